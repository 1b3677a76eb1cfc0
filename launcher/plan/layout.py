"""Which device ids each process of a model uses: shared by the planner and the memory plan."""
from __future__ import annotations

from ..config.model import ModelSpec
from ..devices import DeviceSet
from ..errors import PlanError


def device_ids(spec: ModelSpec, devices: DeviceSet) -> tuple[int, ...]:
    """The devices the model's processes use: the listed ids, else every visible one (layer split, replicas,
    ranks), but one card for mode single."""
    if spec.devices.backend == "cpu":
        return ()
    ids = spec.devices.ids if spec.devices.ids is not None else devices.ids
    if not ids:
        raise PlanError(f"{spec.name}: no {spec.devices.backend} devices to plan for: list them in devices.ids, "
                        f"or use --assume-devices {spec.devices.backend}:N on another machine")
    if spec.parallel.mode == "single" and spec.devices.ids is None:
        return tuple(ids[:1])
    return tuple(ids)


def replica_groups(spec: ModelSpec, ids: tuple[int, ...]) -> list[tuple[int, ...]]:
    reps = spec.parallel.replicas
    if not ids:
        return [()] * reps
    per = spec.parallel.devices_per_replica or max(1, len(ids) // reps)
    if per * reps > len(ids):
        raise PlanError(f"{spec.name}: {reps} replicas x {per} devices need {per * reps} devices, have {len(ids)}")
    return [ids[i * per:(i + 1) * per] for i in range(reps)]


def engine_groups(spec: ModelSpec, devices: DeviceSet) -> list[tuple[int, ...]]:
    """Device ids per engine process (replicas: one group each); rpc and ep_tp: the job's ids as one group."""
    ids = device_ids(spec, devices)
    return replica_groups(spec, ids) if spec.parallel.mode == "replicas" else [ids]
