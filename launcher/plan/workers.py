"""Planning Python workers: each process is `python -m launcher.worker MODULE:ATTR` on an internal port,
told where the gateway is (for `context.call`). Pure, like the planner."""
from __future__ import annotations

from ..binaries import Binaries
from ..config.model import Gateway, WorkerSpec
from ..devices import VISIBLE_ENV, DeviceSet
from ..engines import LOOPBACK, PYTHON_WORKER_KIND
from ..errors import PlanError
from .model import WORKER_GATEWAY_ENV, ModelPlan, ProcessSpec


def plan_worker(spec: WorkerSpec, devices: DeviceSet | None, binaries: Binaries, ports, gateway: Gateway) -> ModelPlan:
    env = list(spec.env) + [(WORKER_GATEWAY_ENV, gateway.local_url)]
    ids: tuple[int, ...] = ()
    if spec.devices.backend in VISIBLE_ENV:  # every process of the worker sees the same devices
        ids = spec.devices.ids if spec.devices.ids is not None else (devices.ids if devices else ())
        if not ids:
            raise PlanError(f"worker {spec.name}: no {spec.devices.backend} devices to plan for: list them in "
                            "devices.ids")
        env.append((VISIBLE_ENV[spec.devices.backend], ",".join(map(str, ids))))
    procs = []
    for i in range(spec.max_processes):  # ports for the most it may run; the runner starts `processes` of them
        port = next(ports)
        procs.append(ProcessSpec(f"{spec.name}#{i}", "worker", PYTHON_WORKER_KIND.argv(spec, port, binaries), tuple(env),
                                 port, PYTHON_WORKER_KIND.health_url(port), devices=tuple(ids)))
    notes = (f"{spec.processes} to {spec.max_processes} processes by load: another starts when a request waits "
             f"{spec.scale_up_after:g}s, one idle {spec.scale_down_after:g}s stops",) if spec.scales else ()
    return ModelPlan(spec.name, (spec.name,), "worker", tuple(procs),
                     upstreams=tuple(f"http://{LOOPBACK}:{p.port}" for p in procs), slots_per_upstream=spec.threads,
                     notes=notes)
