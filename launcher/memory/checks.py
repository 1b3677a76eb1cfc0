"""`launch validate` and `launch` on memory: a device the model will not fit is an error that names the
device, the shortfall and the fixes; above 90% a warning. Needs the model file's header and the
devices' sizes (detected, `--assume-devices cann:8x64g`, or `devices.memory`): without them, no check."""
from __future__ import annotations

from ..config.inherit import model_views
from ..config.model import Config, ModelSpec
from ..config.problems import Problem
from ..config.source import Source
from ..devices import DeviceSet
from ..errors import PlanError
from ..models.embedded import model_file
from ..paths import models_dir
from ..plan.layout import engine_groups
from ..units import show_mib
from .estimate import MiB
from .fit import fixes, shortfall
from .plan import MemoryPlan, plan_memory
from .shape import ModelShape


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


def memory_problems(src: Source, config: Config, devices_for, host_mib: int | None) -> list[Problem]:
    out: list[Problem] = []
    for view, spec in zip(model_views(src), config.models):
        devices = devices_for(spec.devices.backend)
        if spec.devices.backend == "cpu" or devices is None or devices.backend != spec.devices.backend:
            continue
        shape = shape_of(spec)
        plan = memory_plan(spec, devices, host_mib, shape)
        if plan is None:
            continue
        over = plan.over()
        found = fixes(spec, shape, engine_groups(spec, devices), devices.memory_of, devices.ids, host_mib) \
            if over else []
        for row in over:
            hint = ("fixes, each enough alone: " + "; ".join(found)) if found else \
                "no single change is enough: fewer n_ctx, more devices and a smaller quant together"
            out.append(view.problem(("devices",), f"model {spec.name!r} will not fit: {shortfall(row)}",
                                    hint=hint))
        for row in plan.near_full():
            out.append(view.problem(("devices",), f"model {spec.name!r} fills {row.name} to {row.use:.0%} "
                                    f"({show_mib(row.total / MiB)} of {show_mib(row.capacity / MiB)}): little "
                                    "room for the runtime's own buffers", warning=True,
                                    hint="lower n_ctx, or cache_type_k/v: q8_0"))
    return out
