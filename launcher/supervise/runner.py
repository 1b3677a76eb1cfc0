"""A served model: the processes of its plan, restarted on crash, and the upstreams they offer.

Model states: starting -> ready -> restarting -> ready ... | failed | stopped.
One replica crashing takes only that replica out of rotation while it restarts.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx

from ..config.model import ModelSpec
from ..errors import StartError
from ..plan.model import ModelPlan
from .process import ManagedProcess

log = logging.getLogger("launcher.supervise")


@dataclass(eq=False)
class Upstream:
    """One engine endpoint the gateway forwards to."""
    url: str
    process: ManagedProcess
    slots: int = 1
    in_flight: int = 0
    served: int = 0  # requests this upstream accepted (observability; replicas share load)

    @property
    def ready(self) -> bool:
        return self.process.state == "ready"


@dataclass(eq=False)
class ModelRunner:
    plan: ModelPlan
    spec: ModelSpec
    log_dir: Path
    on_restart: Callable[[str], None] = lambda name: None
    on_failed: Callable[[str], None] = lambda name: None
    echo: bool = True
    state: str = "stopped"
    restarts: int = 0
    pending: int = 0  # requests between routing and reaching an engine (pins the model against eviction)
    last_error: str = ""
    started_at: float | None = None
    upstreams: list[Upstream] = field(default_factory=list)
    _tasks: list[asyncio.Task] = field(default_factory=list)
    _stopping: bool = False
    _client: httpx.AsyncClient | None = None

    @property
    def name(self) -> str:
        return self.plan.name

    async def start(self) -> None:
        """Write the plan's files, start every process, wait until all are healthy."""
        self._client = httpx.AsyncClient()
        self._stopping = False  # a model may be loaded again after it was unloaded
        self.state = "starting"
        self.started_at = time.time()
        for path, content in self.plan.files:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(content)
        procs = [ManagedProcess(spec, self.log_dir, self.echo) for spec in self.plan.processes]
        self.upstreams = [Upstream(url, p, self.plan.slots_per_upstream) for url, p in zip(self.plan.upstreams, procs)]
        try:
            for p in procs:
                await p.start()
            await asyncio.gather(*(p.wait_ready(self.spec.engine.start_timeout, self._client) for p in procs))
        except StartError as exc:
            self.state, self.last_error = "failed", str(exc)
            await self.stop()
            self.state = "failed"
            raise
        self.state = "ready"
        self._tasks = [asyncio.create_task(self._watch(up)) for up in self.upstreams]

    async def _watch(self, up: Upstream) -> None:
        """When a process exits unasked, restart it with exponential backoff, up to max_restarts."""
        engine = self.spec.engine
        while not self._stopping:
            await up.process.wait_exit()
            if self._stopping:
                return
            up.process.sweep()  # an mpirun job: its ranks must not outlive it
            why = up.process.returncode_text()
            self.last_error = f"{up.process.spec.name} exited with {why}"
            log.warning("[%s] exited with %s", up.process.spec.name, why)
            up.process.state = "failed"
            self._refresh_state()
            if self.restarts >= engine.max_restarts:
                self.state = "failed"
                log.error("[%s] restart limit (%d) reached; model marked failed", self.name, engine.max_restarts)
                self.on_failed(self.name)
                return
            delay = engine.restart_backoff * (2 ** min(self.restarts, 6))
            self.restarts += 1
            self.on_restart(self.name)
            self.state = "restarting" if not any(u.ready for u in self.upstreams) else self.state
            await asyncio.sleep(delay)
            if self._stopping:
                return
            try:
                await up.process.start()
                await up.process.wait_ready(engine.start_timeout, self._client)
            except StartError as exc:
                self.last_error = str(exc)
                log.error("%s", exc)
                await up.process.stop(2.0)  # a hung start must not block the next wait_exit
                continue  # wait_exit returns at once; the loop counts it as another crash
            self._refresh_state()

    def _refresh_state(self) -> None:
        if self.state in ("failed", "stopped") and self._stopping:
            return
        ready = [u for u in self.upstreams if u.ready]
        self.state = "ready" if ready else "restarting"

    def pick(self, exclude=()) -> Upstream | None:
        """The ready upstream with the most free slots (fewest in-flight per slot), not in `exclude`."""
        ready = [u for u in self.upstreams if u.ready and u not in exclude]
        if not ready:
            return None
        return min(ready, key=lambda u: (u.in_flight / max(u.slots, 1), u.in_flight))

    async def stop(self, grace: float = 10.0) -> None:
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await asyncio.gather(*(u.process.stop(grace) for u in self.upstreams), return_exceptions=True)
        if self._client:
            await self._client.aclose()
        if self.state != "failed":
            self.state = "stopped"

    def kill_now(self) -> None:
        for u in self.upstreams:
            u.process.kill_now()
