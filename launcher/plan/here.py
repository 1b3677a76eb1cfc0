"""The plan on this machine: its devices, binaries, free ports, folders and user handed to the pure planner,
and each model's memory plan read from its GGUF header."""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from ..binaries import Binaries, resolve_binaries
from ..config.model import Config, ModelSpec
from ..devices import CONTAINER_DEVICES, DeviceSet, host_memory_mib, lookup, read_device_ips
from ..errors import PlanError
from ..memory.estimate import MiB
from ..memory.plan import MemoryPlan, plan_memory
from ..memory.shape import ModelShape
from ..models.embedded import model_file
from ..net import free_ports
from ..paths import cache_dir, models_dir
from ..procfs import descendants
from ..telemetry import device_processes, device_readings
from .layout import engine_groups
from .model import Plan
from .placement import Placement, apply, place, placed_models
from .planner import Host, make_plan


def host_here(run_name: str) -> Host:
    """This machine, with plan files under the cache's run/<run_name>."""
    return Host(cpu_count=os.cpu_count() or 1, is_root=os.geteuid() == 0,
                run_dir=str(cache_dir() / "run" / run_name), models_dir=str(models_dir()))


def plan_for_here(config: Config, assumed: DeviceSet | None = None, binaries: Binaries | None = None,
                  offline: bool = False, run_name: str | None = None) -> Plan:
    """The plan on this machine; `offline` plans for another one (devices as the config lists them).
    `run_name` names the folder of its files (default: the config's stem)."""
    devices = lookup(assumed, offline)
    host = host_here(run_name or Path(config.file).stem)
    unlisted = [m for m in config.models if m.parallel.hccl and not m.parallel.hccl.device_ips
                and not m.parallel.hccl.rank_table]
    if unlisted and not offline:  # the rank table's addresses, read off this host's NPUs
        ids = tuple(sorted({i for m in unlisted for i in (m.devices.ids or devices("cann").ids)}))
        host = replace(host, device_ips=read_device_ips(ids))
    host_mib = None if assumed or offline else host_memory_mib()  # another machine's RAM is not known
    config, placements = placed_config(config, devices, host_mib, live=not (assumed or offline))
    plan = make_plan(config, devices, binaries or resolve_binaries(config), free_ports(exclude=gateway_ports(config)),
                     host)
    return replace(plan, placements=placements,
                   models=tuple(replace(m, memory=memory_plan(spec, devices(spec.devices.backend), host_mib))
                                for m, spec in zip(plan.models, config.models)))


def placed_config(config: Config, devices_for, host_mib: int | None = None,
                  live: bool = False) -> tuple[Config, tuple[Placement, ...]]:
    """The config with its placed models' devices written in (placement.py), and each backend's placement.
    `live`: these are this machine's devices, and what other processes hold on them is not free.
    Raises placement.NoRoom when a preload model cannot fit."""
    placements, models = [], list(config.models)
    for backend in sorted({m.devices.backend for m in config.models} - {"cpu"}):
        devices = devices_for(backend)
        if devices is None or not placed_models(models, backend):
            continue
        shapes = {s.name: shape for s in models if s.devices.backend == backend
                  for shape in (shape_of(s),) if shape is not None}
        placement = place(models, shapes, devices, held_by_others(devices) if live else None, host_mib)
        if placement is None:
            continue
        placements.append(placement)
        models = list(with_placements(replace(config, models=tuple(models)), (placement,)).models)
    return replace(config, models=tuple(models)), tuple(placements)


def held_by_others(devices: DeviceSet) -> dict[int, int]:
    """Bytes other processes hold on each device now (npu-smi / nvidia-smi): what launch's own processes hold
    is not counted. In a container given chips (devices.py) the readings, under the node's ids, are matched
    in order."""
    readings = sorted(device_readings(devices.backend) or (), key=lambda c: c.id)
    # launch's own engines (a reload plans while they run) hold memory that is theirs to give back
    mine = descendants(os.getpid())
    ours: dict[int, int] = {}
    for proc in (device_processes(devices.backend) or ()) if mine else ():
        if proc.pid in mine and proc.device is not None:
            ours[proc.device] = ours.get(proc.device, 0) + proc.memory_mib
    if os.environ.get(CONTAINER_DEVICES) and len(readings) == len(devices.ids):
        pairs = zip(devices.ids, readings)
    else:
        pairs = ((c.id, c) for c in readings if c.id in devices.ids)
    out = {}
    for device, chip in pairs:
        used = (chip.hbm_used if chip.hbm_used is not None else chip.memory_used or 0) - ours.get(chip.id, 0)
        if used > 0:
            out[device] = used * MiB
    return out


def with_placements(config: Config, placements) -> Config:
    """The config as placed (a plan's placements written into its models)."""
    models = list(config.models)
    for placement in placements:
        chosen = set(placed_models(models, placement.backend))
        models = [apply(s, placement.of(s.name)) if i in chosen else s for i, s in enumerate(models)]
    return replace(config, models=tuple(models))


def shape_of(spec: ModelSpec) -> ModelShape | None:
    """The model's header, when its file is here and readable (embedded: once assembled)."""
    try:
        return ModelShape.from_file(model_file(spec, models_dir()))
    except (OSError, ValueError, KeyError):
        return None


def memory_plan(spec: ModelSpec, devices: DeviceSet | None, host_mib: int | None = None,
                shape: ModelShape | None = None) -> MemoryPlan | None:
    """The model's memory plan on these devices, or None when its header or its devices are not known."""
    shape = shape or shape_of(spec)
    if shape is None:
        return None
    if devices is None:
        devices = DeviceSet(spec.devices.backend)
    try:
        groups = engine_groups(spec, devices)
        return plan_memory(spec, shape, groups, devices.memory_of, host_mib)
    except PlanError:
        return None
    except (KeyError, ValueError, IndexError, ZeroDivisionError):  # a header this estimator does not know
        return None


def gateway_ports(config: Config) -> tuple[int, ...]:
    """The ports the gateway will bind, which no engine may be planned on."""
    gw = config.gateway
    return tuple(p for p in (gw.port, gw.grpc_port, gw.openai_port) if p)
