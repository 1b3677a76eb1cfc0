"""Where each model goes on the devices, from the memory plans (weights + KV + compute per device). Pure: the
models' headers, the devices' sizes and what other processes hold on them come in as arguments.

Placed: models with `devices.ids: auto`, and, in a config of several models, those that leave `ids` out
(one model alone, or `ids: all`, keeps every visible device). Pipelines (rpc, ep_tp) keep their own devices.

    1. pinned models (ids listed) keep their devices and count first;
    2. preload models, then on-demand ones, each in config order (the same config and devices give the same
       placement);
    3. a model that fits one device goes to the device it fits best (the least room left after it; the lowest
       id on a tie); replicas each to a different device;
    4. a model that fits no one device is split by layers over the fewest devices that hold it, the ones with
       the most room, `tensor_split` from their room;
    5. `n_gpu_layers: auto` becomes the most layers that fit, written as a number.

Preload models must all fit together. An on-demand model is placed in the room the preloaded ones leave when
it fits there, else where it fits with the device to itself: loading it then evicts idle models (pool.py).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..config.model import ModelSpec
from ..devices import DeviceSet
from ..errors import PlanError
from ..memory.estimate import MiB
from ..memory.plan import DEVICE_WORD, MemoryPlan, plan_memory
from ..memory.shape import ModelShape
from ..units import show_mib

PLACED_MODES = ("single", "layer", "replicas")


@dataclass(frozen=True)
class Placed:
    model: str
    ids: tuple[int, ...]                      # every device it uses (replicas: one each)
    mode: str                                 # as placed: single, layer (split) or replicas
    bytes: tuple[tuple[int, int], ...]        # (device id, bytes) it holds there
    why: str
    preload: bool = True
    tensor_split: tuple[float, ...] | None = None
    n_gpu_layers: int | None = None           # the number `auto` became
    resident: bool = True                     # counted in the room of those placed after it

    def on(self, device: int) -> int:
        return dict(self.bytes).get(device, 0)


@dataclass(frozen=True)
class Placement:
    backend: str
    capacity: tuple[tuple[int, int], ...]     # (device id, bytes)
    foreign: tuple[tuple[int, int], ...] = ()  # (device id, bytes other processes hold)
    placed: tuple[Placed, ...] = ()

    def left(self) -> dict[int, int]:
        """Room on each device once the foreign processes and the resident (preloaded) models are there."""
        room = {d: cap - dict(self.foreign).get(d, 0) for d, cap in self.capacity}
        for p in self.placed:
            if p.resident:
                for d, b in p.bytes:
                    room[d] -= b
        return room

    def of(self, model: str) -> Placed | None:
        return next((p for p in self.placed if p.model == model), None)

    def table(self) -> list[str]:
        """Device x model, bytes and share of the device; what is left; why each model went where it did."""
        word = DEVICE_WORD.get(self.backend, "device")
        names = [p.model for p in self.placed]
        width = max([len(n) for n in names] + [len("in use already"), 12])
        head = f"{'':<{width}}  " + "  ".join(f"{word + ' ' + str(d):>16}" for d, _ in self.capacity)
        out = [f"placement on {len(self.capacity)} {self.backend} device(s) (what each model holds there, and its "
               "share of the device):", head]
        caps = dict(self.capacity)

        def cell(d: int, b: int) -> str:
            return f"{show_mib(b / MiB)} {b / caps[d]:4.0%}" if b else "-"
        if any(b for _, b in self.foreign):   # read with npu-smi / nvidia-smi before launch started anything
            out.append(f"{'in use already':<{width}}  " + "  ".join(f"{cell(d, dict(self.foreign).get(d, 0)):>16}"
                                                                        for d, _ in self.capacity))
        for p in self.placed:
            label = p.model + ("" if p.preload else " *")
            out.append(f"{label:<{width}}  " + "  ".join(f"{cell(d, p.on(d)):>16}" for d, _ in self.capacity))
        left = self.left()
        out.append(f"{'left':<{width}}  " + "  ".join(f"{show_mib(left[d] / MiB):>16}" for d, _ in self.capacity))
        if any(not p.preload for p in self.placed):
            out.append("* on demand: loaded at its first request, evicting idle models if it must")
        if any(b for _, b in self.foreign):
            out.append("in use already: memory other processes held when launch planned, not counted free")
        out += [f"{p.model}: {p.why}" for p in self.placed]
        return out


class Unplaceable(PlanError):
    """A model to place whose header cannot be read."""

    def __init__(self, spec: ModelSpec, message: str):
        super().__init__(message)
        self.spec = spec


class NoRoom(PlanError):
    """A model the devices cannot hold (a preload one: next to the others). `room`: bytes free on each device when
    it was tried; `fewer`: the models that, kept out of the preloaded set, would make room for it."""

    def __init__(self, spec: ModelSpec, room: dict[int, int], fewer: list[str]):
        word = DEVICE_WORD.get(spec.devices.backend, "device")
        most = max(room, key=lambda d: (room[d], -d))
        super().__init__(f"model {spec.name!r} fits on no {word} and no split of them: the most room is "
                         f"{show_mib(room[most] / MiB)} on {word} {most}"
                         + (" once the preloaded models are placed" if fewer else ""))
        self.spec, self.room, self.fewer, self.device = spec, room, fewer, most


@dataclass
class _Room:
    free: dict[int, int]
    ordered: tuple[int, ...]


def placed_models(specs: list[ModelSpec], backend: str) -> list[int]:
    """Indexes of the models the planner places on `backend`'s devices."""
    on = [i for i, s in enumerate(specs) if s.devices.backend == backend]
    several = len(on) > 1
    return [i for i in on if specs[i].parallel.mode in PLACED_MODES
            and (specs[i].devices.auto or (several and specs[i].devices.ids is None and not specs[i].devices.every))]


def place(specs: list[ModelSpec], shapes: dict[str, ModelShape], devices: DeviceSet,
          foreign: dict[int, int] | None = None, host_mib: int | None = None) -> Placement | None:
    """The placement of the models of `devices.backend`, or None when there is nothing to place or the devices'
    sizes are not known. Raises NoRoom for a preload model that cannot fit."""
    chosen = placed_models(specs, devices.backend)
    caps = {d: (devices.memory_of(d) or 0) * MiB for d in devices.ids}
    if not chosen or not devices.ids or not all(caps.values()):
        return None
    foreign = {d: b for d, b in (foreign or {}).items() if d in caps}
    free = {d: caps[d] - foreign.get(d, 0) for d in devices.ids}   # before any model
    room = _Room(dict(free), tuple(devices.ids))
    placed: list[Placed] = []
    pinned = [s for s in specs if s.devices.backend == devices.backend and s.devices.ids is not None
              and s.name in shapes]
    for spec in pinned:   # first: their devices are theirs
        plan = _plan(spec, shapes[spec.name], [spec.devices.ids], caps, host_mib)
        held = _rows(plan)
        placed.append(Placed(spec.name, spec.devices.ids, spec.parallel.mode, tuple(held.items()),
                             "pinned by devices.ids", spec.preload, resident=spec.preload))
        if spec.preload:
            _take(room, held)
    order = sorted(chosen, key=lambda i: (not specs[i].preload, i))
    for i in order:
        spec = specs[i]
        shape = shapes.get(spec.name)
        if shape is None:
            raise Unplaceable(spec, f"model {spec.name!r}: its devices are placed from its memory plan, but its GGUF "
                                    "header cannot be read here")
        got = _place_one(spec, shape, room, caps, host_mib)
        if got is not None:
            _take(room, dict(got.bytes))
        elif spec.preload:
            raise NoRoom(spec, dict(room.free), _fewer(spec, shape, room, caps, host_mib, placed))
        else:   # on demand, alone on its devices (other models evicted when it loads)
            alone = _Room(dict(free), room.ordered)
            got = _place_one(spec, shape, alone, caps, host_mib)
            if got is None:
                raise NoRoom(spec, dict(alone.free), [])
            got = replace(got, resident=False, why=got.why + "; loading it evicts idle models there")
        placed.append(replace(got, preload=spec.preload))
    return Placement(devices.backend, tuple(caps.items()), tuple(sorted(foreign.items())), tuple(placed))


def apply(spec: ModelSpec, placed: Placed) -> ModelSpec:
    """The model as placed: its devices, mode, tensor_split and n_gpu_layers written in."""
    params = spec.params
    if placed.tensor_split is not None:
        params = replace(params, tensor_split=placed.tensor_split)
    if placed.n_gpu_layers is not None:
        params = replace(params, n_gpu_layers=placed.n_gpu_layers)
    parallel = spec.parallel if placed.mode == spec.parallel.mode else replace(spec.parallel, mode=placed.mode)
    return replace(spec, params=params, parallel=parallel, devices=replace(spec.devices, ids=placed.ids, auto=False),
                   machine_notes=spec.machine_notes + (f"placed: {placed.why}",))


# --- one model ----------------------------------------------------------------------------------------------
def _plan(spec: ModelSpec, shape: ModelShape, groups, caps: dict[int, int], host_mib) -> MemoryPlan:
    return plan_memory(spec, shape, [tuple(g) for g in groups], lambda d: caps.get(d, 0) // MiB or None, host_mib)


def _rows(plan: MemoryPlan) -> dict[int, int]:
    out: dict[int, int] = {}
    for r in plan.rows:
        if r.device_id is not None:
            out[r.device_id] = out.get(r.device_id, 0) + r.total
    return out


def _fits(held: dict[int, int], room: _Room) -> bool:
    return all(b <= room.free.get(d, 0) for d, b in held.items())


def _take(room: _Room, held: dict[int, int]) -> None:
    for d, b in held.items():
        room.free[d] -= b


def _auto_layers(spec: ModelSpec) -> bool:
    return spec.params.n_gpu_layers in ("auto", -1)


def _single(spec: ModelSpec, shape: ModelShape, room: _Room, caps, host_mib, exclude=()) -> tuple[int, dict] | None:
    """The device the model fits best on alone: the least room left after it, the lowest id on a tie."""
    best = None
    one = replace(spec, parallel=replace(spec.parallel, mode="single"))
    for d in room.ordered:
        if d in exclude:
            continue
        held = _rows(_plan(one, shape, [(d,)], caps, host_mib))
        if _fits(held, room):
            left = room.free[d] - held.get(d, 0)
            if best is None or left < best[0]:
                best = (left, d, held)
    return (best[1], best[2]) if best else None


def _place_one(spec: ModelSpec, shape: ModelShape, room: _Room, caps, host_mib) -> Placed | None:
    auto = _auto_layers(spec)
    spec = replace(spec, params=replace(spec.params, n_gpu_layers=None)) if auto else spec
    every = shape.n_layer + 1 if auto else None
    word = DEVICE_WORD.get(spec.devices.backend, "device")
    if spec.parallel.mode == "replicas":
        ids, held_all, trial = [], {}, _Room(dict(room.free), room.ordered)
        for _ in range(spec.parallel.replicas):
            got = _single(spec, shape, trial, caps, host_mib, exclude=ids)
            if got is None:
                return None
            ids.append(got[0])
            _take(trial, got[1])
            held_all.update(got[1])
        return Placed(spec.name, tuple(sorted(ids)), "replicas", tuple(sorted(held_all.items())),
                      f"{spec.parallel.replicas} replicas, each on a {word} of its own where it fits best",
                      n_gpu_layers=every)
    got = _single(spec, shape, room, caps, host_mib)
    if got is not None:
        d, held = got
        return Placed(spec.name, (d,), "single", tuple(held.items()),
                      f"fits one {word}: {word} {d} is left with the least unused room "
                      f"({show_mib((room.free[d] - held[d]) / MiB)})", n_gpu_layers=every)
    by_room = sorted(room.ordered, key=lambda d: (-room.free[d], d))
    for k in range(2, len(by_room) + 1):
        group = tuple(sorted(by_room[:k]))
        split = _split(room, group)
        layer = replace(spec, parallel=replace(spec.parallel, mode="layer"),
                        params=replace(spec.params, tensor_split=split))
        held = _rows(_plan(layer, shape, [group], caps, host_mib))
        if _fits(held, room):
            return Placed(spec.name, group, "layer", tuple(sorted(held.items())),
                          f"fits no one {word}: its layers split over the {k} with the most room, tensor_split "
                          f"{', '.join(f'{x:g}' for x in split)} from their room", tensor_split=split,
                          n_gpu_layers=every)
    return _partial(spec, shape, room, caps, host_mib, by_room[0]) if auto else None


def _partial(spec: ModelSpec, shape: ModelShape, room: _Room, caps, host_mib, d: int) -> Placed | None:
    """n_gpu_layers: auto on a model no device holds whole: the most layers the roomiest device takes."""
    word = DEVICE_WORD.get(spec.devices.backend, "device")
    one = replace(spec, parallel=replace(spec.parallel, mode="single"))

    def held_with(n: int) -> dict[int, int]:
        return _rows(_plan(replace(one, params=replace(one.params, n_gpu_layers=n)), shape, [(d,)], caps, host_mib))
    lo, hi = -1, shape.n_layer
    while lo < hi:   # the most layers that fit: binary search on the memory plan
        mid = (lo + hi + 1) // 2
        if _fits(held_with(mid), room):
            lo = mid
        else:
            hi = mid - 1
    if lo < 0:
        return None
    return Placed(spec.name, (d,), "single", tuple(held_with(lo).items()),
                  f"n_gpu_layers auto: {lo} of {shape.n_layer + 1} layers fit {word} {d} (the most room); "
                  "the rest run on the host", n_gpu_layers=lo)


def _fewer(spec: ModelSpec, shape: ModelShape, room: _Room, caps, host_mib, placed: list[Placed]) -> list[str]:
    """Preloaded models whose room, given back, would hold `spec`: the smallest first."""
    out = []
    for p in sorted((p for p in placed if p.resident), key=lambda p: (sum(b for _, b in p.bytes), p.model)):
        trial = _Room(dict(room.free), room.ordered)
        for d, b in p.bytes:
            trial.free[d] += b
        if _place_one(spec, shape, trial, caps, host_mib) is not None:
            out.append(p.model)
    return out


def _split(room: _Room, group: tuple[int, ...]) -> tuple[float, ...]:
    total = sum(max(room.free[d], 0) for d in group) or 1
    return tuple(round(max(room.free[d], 0) / total, 3) for d in group)
