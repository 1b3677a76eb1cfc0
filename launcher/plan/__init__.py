"""Plan: the exact processes, argv, env and ports for a config.

`planner.make_plan` is pure; `plan_for_here` hands it this machine's facts (devices, binaries,
free ports, cache folders, user) as arguments.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from ..binaries import Binaries, resolve_binaries
from ..config.model import Config
from ..devices import DeviceSet, host_memory_mib, lookup, read_device_ips
from ..net import free_ports
from ..paths import cache_dir, models_dir
from .model import FlagIssue, ModelPlan, MpiJob, Plan, PlanFile, ProcessSpec, RankJob
from .planner import Host, make_plan

__all__ = ["plan_for_here", "host_here", "make_plan", "Host", "Binaries", "Plan", "ModelPlan", "ProcessSpec",
           "MpiJob", "RankJob", "PlanFile", "FlagIssue"]


def host_here(run_name: str) -> Host:
    """This machine, with plan files under the cache's run/<run_name>."""
    return Host(cpu_count=os.cpu_count() or 1, is_root=os.geteuid() == 0,
                run_dir=str(cache_dir() / "run" / run_name), models_dir=str(models_dir()))


def plan_for_here(config: Config, assumed: DeviceSet | None = None, binaries: Binaries | None = None,
                  offline: bool = False) -> Plan:
    """The plan on this machine; `offline` plans for another one (devices as the config lists them)."""
    devices = lookup(assumed, offline)
    host = host_here(Path(config.file).stem)
    unlisted = [m for m in config.models if m.parallel.hccl and not m.parallel.hccl.device_ips]
    if unlisted and not offline:  # the rank table's addresses, read off this host's NPUs
        ids = tuple(sorted({i for m in unlisted for i in (m.devices.ids or devices("cann").ids)}))
        host = replace(host, device_ips=read_device_ips(ids))
    plan = make_plan(config, devices, binaries or resolve_binaries(config), free_ports(), host)
    from ..memory.checks import memory_plan  # reads the GGUF headers: here, not in the pure planner
    host_mib = None if assumed or offline else host_memory_mib()  # another machine's RAM is not known
    return replace(plan, models=tuple(replace(m, memory=memory_plan(spec, devices(spec.devices.backend), host_mib))
                                      for m, spec in zip(plan.models, config.models)))
