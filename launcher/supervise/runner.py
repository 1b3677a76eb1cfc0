"""A served model or Python worker: the processes of its plan, restarted on crash, and the upstreams
they offer.

States are ModelState (states.py); every change is emitted as an Event. One replica crashing
takes only that replica out of rotation while it restarts.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

from ..config.model import ModelSpec, WorkerSpec
from ..errors import StartError
from ..plan.model import ModelPlan
from .events import Event, EventKind
from .process import Process, ProcessFactory
from .states import ModelState, ProcessState
from .targets import Upstreams

log = logging.getLogger("launcher.supervise")
STABLE = 60.0  # seconds up after which a crash counts as the first of a new row


def write_plan_files(plan: ModelPlan) -> None:
    for f in plan.files:
        Path(f.path).parent.mkdir(parents=True, exist_ok=True)
        Path(f.path).write_text(f.content)


@dataclass(eq=False)
class Upstream:
    """One engine endpoint the gateway forwards to."""
    url: str
    process: Process
    slots: int = 1
    in_flight: int = 0
    served: int = 0  # requests this upstream accepted (observability; replicas share load)

    @property
    def ready(self) -> bool:
        return self.process.state == ProcessState.READY


class ModelRunner(Upstreams):
    """A Target (targets.py) that this launcher runs."""

    def __init__(self, plan: ModelPlan, spec: ModelSpec | WorkerSpec, processes: ProcessFactory,
                 emit: Callable[[Event], None] = lambda event: None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 log: Callable[[str, str, str], None] = lambda model, source, text: None):
        self.plan, self.spec = plan, spec
        self._new_process, self._emit, self._sleep, self._log = processes, emit, sleep, log
        self.state = ModelState.STOPPED
        self.restarts = 0  # every restart (metrics, status)
        self.streak = 0    # crashes in a row: what backoff and max_restarts count
        self.pending = 0  # requests between routing and reaching an engine (pins the model against eviction)
        self.held = False  # stopped through the management API: not loaded on demand until switched to again
        self.last_error = ""
        self.started_at: float | None = None
        self.upstreams: list[Upstream] = []
        self.request_defaults = spec.defaults.as_request_fields()  # added to requests that leave them out
        self._tasks: list[asyncio.Task] = []   # one restart watcher per upstream, in the same order
        self._stopping = False
        self.scaling = False  # a worker scaled by load is starting or stopping a process

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def is_worker(self) -> bool:
        return self.plan.mode == "worker"

    @property
    def capabilities(self) -> list[dict]:
        """A model's come from its config; a worker's from its processes' health answers (its decorators)."""
        if not self.is_worker:
            return self.spec.capabilities
        out: list[dict] = []
        for u in self.upstreams:
            for cap in (getattr(u.process, "health", None) or {}).get("capabilities") or []:
                if isinstance(cap, dict) and cap not in out:
                    out.append(cap)
        return out

    def _set_state(self, new: ModelState, detail: str = "") -> None:
        if new != self.state:
            self.state = new
            self._emit(Event(EventKind.STATE, self.name, new, detail))

    def mark_starting(self) -> None:
        """Counts as starting from now on (so /ready is not 200 before a preloaded model loads)."""
        self._set_state(ModelState.STARTING)

    async def start(self) -> None:
        """Write the plan's files, start every process, wait until all are healthy."""
        self._stopping = False  # a model may be loaded again after it was unloaded
        self.streak = 0
        self._set_state(ModelState.STARTING)
        self.started_at = time.time()
        write_plan_files(self.plan)
        first = getattr(self.spec, "processes", None) if self.is_worker else None  # a scaled worker's min
        procs = [self._process(spec) for spec in self.plan.processes[:first]]
        self.upstreams = [Upstream(url, p, self.plan.slots_per_upstream) for url, p in zip(self.plan.upstreams, procs)]
        try:
            for p in procs:
                await p.start()
            await asyncio.gather(*(p.ensure_ready(self.spec.engine.start_timeout) for p in procs))
        except StartError as exc:
            self.last_error = str(exc)
            self._set_state(ModelState.FAILED, str(exc))
            await self.stop()  # keeps FAILED
            raise
        self._set_state(ModelState.READY)
        self._tasks = [asyncio.create_task(self._watch(up)) for up in self.upstreams]

    def _process(self, spec) -> Process:
        p = self._new_process(spec)
        p.on_line = lambda source, text: self._log(self.name, source, text)
        return p

    async def add_process(self) -> bool:
        """Start one more of the plan's processes (a worker scaled by load); True once it is ready and takes
        requests. The plan laid out ports for the most it may run."""
        running = {u.url for u in self.upstreams}
        spare = [(url, spec) for url, spec in zip(self.plan.upstreams, self.plan.processes) if url not in running]
        if not spare or self._stopping:
            return False
        url, spec = spare[0]
        up = Upstream(url, self._process(spec), self.plan.slots_per_upstream)
        try:
            await up.process.start()
            await up.process.ensure_ready(self.spec.engine.start_timeout)
        except StartError as exc:
            log.warning("[%s] an extra process did not start: %s", self.name, exc)
            await up.process.stop(2.0)
            return False
        if self._stopping:
            await up.process.stop()
            return False
        self.upstreams.append(up)
        self._tasks.append(asyncio.create_task(self._watch(up)))
        self._emit(Event(EventKind.SCALED, self.name, self.state, f"{len(self.upstreams)} processes"))
        return True

    def retire(self, up: Upstream, grace: float = 10.0) -> Awaitable[None]:
        """Take one idle process of a worker scaled by load out now (the caller saw it idle in this same step,
        so no request can be given to it any more); the returned awaitable stops it."""
        index = self.upstreams.index(up)
        self.upstreams.remove(up)
        watcher = self._tasks.pop(index) if index < len(self._tasks) else None
        if watcher is not None:
            watcher.cancel()  # its exit is asked for: not a crash to restart

        async def stop() -> None:
            if watcher is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await up.process.stop(grace)
            self._emit(Event(EventKind.SCALED, self.name, self.state, f"{len(self.upstreams)} processes"))
        return stop()

    async def _watch(self, up: Upstream) -> None:
        """When a process exits unasked, restart it with exponential backoff, up to max_restarts crashes in a
        row (a process that ran for STABLE seconds starts a new row, as Kubernetes resets its backoff)."""
        engine = self.spec.engine
        while not self._stopping:
            await up.process.wait_exit()
            if self._stopping:
                return
            why = up.process.exit_reason()
            self.last_error = f"{up.process.spec.name} exited with {why}"
            log.warning("[%s] exited with %s", up.process.spec.name, why)
            if up.process.started_at and time.time() - up.process.started_at > STABLE:
                self.streak = 0
            if self.streak >= engine.max_restarts:
                log.error("[%s] %d crashes in a row (max_restarts); model marked failed", self.name, self.streak)
                self._set_state(ModelState.FAILED, self.last_error)
                self._emit(Event(EventKind.FAILED, self.name, ModelState.FAILED, self.last_error))
                return
            self._refresh_state()
            delay = self.backoff(self.streak)
            self.restarts += 1
            self.streak += 1
            self._emit(Event(EventKind.RESTARTED, self.name, self.state, self.last_error))
            await self._sleep(delay)
            if self._stopping:
                return
            try:
                await up.process.start()
                await up.process.ensure_ready(engine.start_timeout)
            except StartError as exc:
                self.last_error = str(exc)
                log.error("%s", exc)
                await up.process.stop(2.0)  # a hung start must not block the next wait_exit
                continue  # wait_exit returns at once; the loop counts it as another crash
            self._refresh_state()

    def backoff(self, restarts: int) -> float:
        """Seconds before restart number `restarts + 1`: doubling from engine.restart_backoff."""
        return self.spec.engine.restart_backoff * (2 ** min(restarts, 6))

    def _refresh_state(self) -> None:
        if self._stopping:
            return
        self._set_state(ModelState.READY if any(u.ready for u in self.upstreams) else ModelState.RESTARTING)

    async def stop(self, grace: float = 10.0) -> None:
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except asyncio.CancelledError:
                pass
            except Exception:  # a bug in the watcher: say so, and still stop the processes
                log.exception("[%s] restart watcher failed", self.name)
        self._tasks = []
        await asyncio.gather(*(u.process.stop(grace) for u in self.upstreams), return_exceptions=True)
        if self.state != ModelState.FAILED:
            self._set_state(ModelState.STOPPED)

    def kill_now(self) -> None:
        for u in self.upstreams:
            u.process.kill_now()
