"""What a config leaves to the machine, decided the way the Ascend guide runs llama-server.

- No `devices.backend`: the machine's (CANN when the host shows Ascend, CUDA when nvidia-smi answers, else
  CPU), or CANN for the Ascend fork's engine. A config that names cpu on an Ascend host is obeyed, with a
  warning.
- No `parallel` section and no `devices.ids` (a guide-style config): `split_mode: layer` is a layer split
  over every visible NPU; otherwise one card, `main_gpu` of the visible ones (the engine then sees only that
  card, as its device 0). The exported ASCEND_RT_VISIBLE_DEVICES is what "visible" means. In a config of
  several models the planner places them instead (plan/placement.py).

The decisions are written into the document (marked, so a problem with them says so) and kept as notes
that `launch plan` prints.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..config.inherit import ModelView, model_views
from ..config.problems import Problem
from ..config.source import Source
from ..devices import VISIBLE_ENV, BackendChoice, DeviceSet, exported_visible

WORD = {"cann": "NPU", "cuda": "GPU"}


@dataclass(frozen=True)
class Decided:
    """What the machine decided for one model."""
    backend_reason: str = ""      # set when the config named no backend for it
    notes: tuple[str, ...] = ()   # the guide's layout, when its config is guide-style


def apply_machine_defaults(src: Source, choice: BackendChoice, devices_for) -> tuple[list[Problem], dict]:
    """Fill the backend and the guide's layout in; (problems, {model index: Decided})."""
    d = src.data
    views = model_views(src)
    unnamed = {i for i, v in enumerate(views) if v.get("devices", "backend") is None}
    if unnamed and not isinstance(d.get("devices", {}), dict):
        return [], {}  # the schema reports the bad section
    if unnamed and all(views[i].get("engine", "flavor") == "ascend-fork" for i in unnamed):
        choice = BackendChoice("cann", "engine.flavor ascend-fork runs on Ascend NPUs")
    if unnamed:
        d.setdefault("devices", {})["backend"] = choice.backend
        src.from_machine[("devices", "backend")] = choice.reason
        views = model_views(src)
    problems: list[Problem] = []
    decided = {i: Decided(choice.reason) for i in unnamed}
    for i, v in enumerate(views):
        backend = v.get("devices", "backend", kind=str)
        if backend == "cpu" and choice.backend != "cpu" and ("devices", "backend") not in src.from_machine:
            problems.append(v.problem(("devices", "backend"), f"this host has {choice.backend} devices "
                                      f"({choice.reason}), but the config runs the model on the CPU", value=backend,
                                      warning=True, hint="remove devices.backend to use them, or name "
                                                         f"backend: {choice.backend}"))
        several = sum(1 for w in views if w.get("devices", "backend", kind=str) == backend) > 1
        if backend in WORD and "parallel" not in v.data and v.get("devices", "ids") is None and not several:
            found, said = _guide_layout(src, v, devices_for(backend), backend)
            problems += found
            decided[i] = replace(decided.get(i, Decided()), notes=said)
    return problems, decided


def _guide_layout(src: Source, v: ModelView, devices: DeviceSet | None, backend: str) -> tuple[list[Problem], tuple]:
    word, var = WORD[backend], VISIBLE_ENV[backend]
    where = f"{var}={','.join(map(str, devices.ids))}" if devices and exported_visible(backend) else \
        ("assumed" if devices and devices.assumed else "visible")
    target = v.item if v.item is not None else src.data
    base = ("models", v.index) if v.item is not None else ()
    split = v.get("split_mode", kind=str)
    if devices is None or not devices.ids:
        return [], ()  # unknown (offline) or none: the device checks say so
    ids = devices.ids
    if split == "layer":
        if len(ids) < 2:
            return [], (f"split_mode layer with one {word} ({where}): the model runs on {word} {ids[0]}",)
        target["parallel"] = {"mode": "layer"}
        src.from_machine[base + ("parallel",)] = f"split_mode layer over every {where} {word}"
        return [], (f"split_mode layer: a layer split over the {len(ids)} {word}s {list(ids)} ({where}), as "
                    "the Ascend guide runs it",)
    k = v.get("main_gpu", kind=int) or 0
    if k >= len(ids):
        return [v.problem(("main_gpu",), f"main_gpu {k} counts within the {word}s {where}: there are {len(ids)} "
                          f"({list(ids)})", value=k, hint=f"main_gpu 0..{len(ids) - 1}, or export {var} with "
                                                           "more devices")], ()
    target.setdefault("devices", {})["ids"] = [ids[k]]
    src.from_machine[base + ("devices", "ids")] = f"main_gpu {k} of the {word}s {where}"
    said = f"one {word}: {word} {ids[k]}" + (f", main_gpu {k} of {list(ids)} ({where})" if len(ids) > 1 else "")
    if k:
        target["main_gpu"] = 0  # the engine sees that one card only, as its device 0
        said += "; the engine sees only it, so its main_gpu is 0"
    return [], (said,)
