"""`launch validate` and `launch` on memory: a device the model will not fit is an error that names the
device, the shortfall and the fixes; above 90% a warning. Needs the model file's header and the
devices' sizes (detected, `--assume-devices cann:8x64g`, or `devices.memory`): without them, no check."""
from __future__ import annotations

from ..config.inherit import model_views
from ..config.model import Config
from ..config.problems import Problem
from ..config.source import Source
from ..memory.estimate import MiB
from ..plan.here import memory_plan, shape_of
from ..plan.layout import engine_groups
from ..units import show_mib
from .fixes import fixes, shortfall


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
