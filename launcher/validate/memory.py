"""`launch validate` and `launch` on memory: a device the model will not fit is an error that names the
device, the shortfall and the fixes; above 90% a warning. Needs the model file's header and the
devices' sizes (detected, `--assume-devices cann:8x64g`, or `devices.memory`): without them, no check."""
from __future__ import annotations

from ..config.inherit import model_views
from ..config.model import Config
from ..config.problems import Problem
from ..config.source import Source
from ..memory.estimate import MiB
from ..plan.here import memory_plan, placed_config, shape_of
from ..plan.layout import engine_groups
from ..plan.placement import NoRoom, Unplaceable
from ..units import show_mib
from .fixes import fixes, shortfall


def memory_problems(src: Source, config: Config, devices_for, host_mib: int | None) -> list[Problem]:
    out: list[Problem] = []
    try:   # models without devices.ids are placed first: then each is checked where it goes
        config, _ = placed_config(config, devices_for, host_mib, live=_live(config, devices_for))
    except Unplaceable as exc:
        view = model_views(src)[config.models.index(exc.spec)]
        return [view.problem(("model",), str(exc), hint="list devices.ids for it, or check the file is a GGUF model")]
    except NoRoom as exc:
        view = model_views(src)[config.models.index(exc.spec)]
        own = view.item if view.item is not None else (src.data or {})
        where = ("devices",) if "devices" in own else ("model",)   # at the model's own entry
        return [view.problem(where, str(exc), hint=no_room_hint(exc, devices_for, host_mib))]
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


def _live(config: Config, devices_for) -> bool:
    """This machine's devices (not --assume-devices): what other processes hold on them is not free."""
    sets = [devices_for(b) for b in {m.devices.backend for m in config.models} - {"cpu"}]
    return any(s is not None and not s.assumed for s in sets)


def no_room_hint(exc: NoRoom, devices_for, host_mib: int | None) -> str:
    """The smallest fixes, each enough alone: fewer preloaded models, then the model's own (n_ctx, q8_0 KV, one
    more device, a smaller quant with its `launch quantize` line), checked against the room it had."""
    spec = exc.spec
    found = [f"preload: false on {name!r} (it is loaded at its first request instead)" for name in exc.fewer[:2]]
    shape = shape_of(spec)
    if shape is not None:
        ids = tuple(sorted(exc.room, key=lambda d: (-exc.room[d], d)))
        room_mib = {d: max(b, 0) // MiB for d, b in exc.room.items()}
        found += fixes(spec, shape, [ids], lambda d: room_mib.get(d) or None, (), host_mib)
    return ("fixes, each enough alone: " + "; ".join(found)) if found else \
        "no single change is enough: fewer models, fewer n_ctx and a smaller quant together"
