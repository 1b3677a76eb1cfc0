"""Plan: the exact processes, argv, env and ports for a config. `planner` is pure; this wires in the machine."""
from __future__ import annotations

import os
from pathlib import Path

from ..config.model import Config
from ..devices import DeviceSet, detect
from ..net import free_ports
from ..paths import cache_dir
from .model import Binaries, ModelPlan, Plan, ProcessSpec
from .planner import Host, make_plan

__all__ = ["plan_for_here", "make_plan", "Host", "Binaries", "Plan", "ModelPlan", "ProcessSpec"]


def plan_for_here(config: Config, assumed: DeviceSet | None = None, binaries: Binaries | None = None) -> Plan:
    from ..binaries import resolve_binaries
    seen: dict[str, DeviceSet] = {}

    def devices(backend: str) -> DeviceSet:
        if backend not in seen:
            seen[backend] = assumed or detect(backend)
        return seen[backend]
    run_dir = cache_dir() / "run" / Path(config.file).stem
    host = Host(cpu_count=os.cpu_count() or 1, is_root=os.geteuid() == 0, run_dir=str(run_dir))
    return make_plan(config, devices, binaries or resolve_binaries(config), free_ports(), host)
