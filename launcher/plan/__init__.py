"""Plan: the exact processes, argv, env and ports for a config. `planner` is pure; this wires in the machine."""
from __future__ import annotations

from pathlib import Path

from ..config.model import Config
from ..devices import DeviceSet, lookup
from ..net import free_ports
from ..paths import cache_dir
from .model import Binaries, ModelPlan, Plan, ProcessSpec
from .planner import Host, make_plan

__all__ = ["plan_for_here", "make_plan", "Host", "Binaries", "Plan", "ModelPlan", "ProcessSpec"]


def plan_for_here(config: Config, assumed: DeviceSet | None = None, binaries: Binaries | None = None) -> Plan:
    from ..binaries import resolve_binaries
    host = Host.here(str(cache_dir() / "run" / Path(config.file).stem))
    return make_plan(config, lookup(assumed), binaries or resolve_binaries(config), free_ports(), host)
