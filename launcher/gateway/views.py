"""One typed view of a target and its engines, built here and shown by every route that shows engines:
/v1/models (`engines`), /registry (`processes`), /api/events (`engines`) and /api/v1/model/status
(`processes`). Field names are the same in all four."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..supervise.runner import ModelRunner, Upstream
from ..supervise.states import ProcessState
from ..supervise.targets import Endpoint, Target

GONE = (ProcessState.STOPPED, ProcessState.FAILED)


@dataclass(frozen=True)
class EngineView:
    name: str               # the process's name (`gemma#0`), or the replica's for a registered one
    url: str
    pid: int | None         # None while no process runs
    port: int | None
    state: str
    in_flight: int
    served: int

    def as_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TargetView:
    name: str
    kind: str               # model | worker | remote
    state: str
    mode: str | None
    backend: str | None
    devices: tuple[int, ...]
    capabilities: list[dict]
    restarts: int
    last_error: str
    in_flight: int
    engines: tuple[EngineView, ...]


def engine_view(target: Target, up: Endpoint) -> EngineView:
    if isinstance(up, Upstream):
        p = up.process
        alive = p.pid is not None and p.state not in GONE
        return EngineView(p.spec.name, up.url, p.pid if alive else None, p.spec.port, p.state, up.in_flight, up.served)
    return EngineView(target.name, up.url, None, None, "ready" if up.ready else "stopped", up.in_flight, up.served)


def target_view(target: Target) -> TargetView:
    engines = tuple(engine_view(target, u) for u in target.upstreams)
    in_flight = sum(u.in_flight for u in target.upstreams)
    if isinstance(target, ModelRunner):
        devices = target.spec.devices
        return TargetView(target.name, "worker" if target.is_worker else "model", target.state, target.plan.mode,
                          devices.backend, tuple(devices.ids or ()), target.capabilities, target.restarts,
                          target.last_error, in_flight, engines)
    return TargetView(target.name, "remote", target.state, None, None, (), target.capabilities, 0, "", in_flight,
                      engines)
