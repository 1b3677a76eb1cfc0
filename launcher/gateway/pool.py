"""Which models are loaded: on-demand loading, eviction by bytes on the devices (room.py) and by count under
`max_loaded`, idle TTL, switches.

A model with requests in flight is never evicted; when every loaded model is busy, a load
waits (bounded by load_timeout) for one to become idle, then gives up with 503. A model stopped
through the management API is held: requests get 503 model_stopped, nothing loads it on demand.
"""
from __future__ import annotations

import asyncio
import logging
import time

from ..errors import EngineUnavailable, ModelsBusy, ModelStopped, StartError
from ..supervise.deployment import Deployment
from ..supervise.runner import ModelRunner
from ..supervise.states import ModelState
from .room import Room

log = logging.getLogger("launcher.pool")


class ModelPool:
    def __init__(self, deployment: Deployment, max_loaded: int | None, load_timeout: float, room: Room | None = None):
        self.deployment = deployment
        self.max_loaded, self.load_timeout = max_loaded, load_timeout
        self.room = room or Room()   # bytes on the devices, for placed models (room.py)
        self.last_used: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.loading: set[str] = set()  # models being loaded on demand right now
        self._ttl_task: asyncio.Task | None = None

    def touch(self, runner: ModelRunner) -> None:
        self.last_used[runner.name] = time.monotonic()

    def admit(self, runner: ModelRunner) -> None:
        """Refuse a request for a model held stopped."""
        if runner.held:
            raise ModelStopped(f"model {runner.name!r} was stopped through the management API; switch to it "
                               "(POST /api/v1/model/switch) to load it again", retry_after=60)

    def needs_load(self, runner: ModelRunner) -> bool:
        """Not loaded (never, or unloaded), or being loaded for another request: wait for it."""
        return runner.state == ModelState.STOPPED or runner.name in self.loading

    def loaded(self) -> list[ModelRunner]:
        return [r for r in self.deployment.models if r.state.loaded]

    async def ensure_loaded(self, runner: ModelRunner, *, room: int | None = None, hold_evicted: bool = False) -> None:
        """Return when `runner` can take requests; load it if it is not loaded, first unloading the least
        recently used idle models so that at most `room` (default max_loaded) others stay loaded."""
        self.admit(runner)
        self.touch(runner)
        if runner.state.serving:
            return
        lock = self._locks.setdefault(runner.name, asyncio.Lock())
        self.loading.add(runner.name)
        try:
            async with lock:  # one loader; concurrent requests wait for it
                if runner.state.serving:
                    return
                if room is None and self.max_loaded is not None:
                    room = self.max_loaded - 1
                await self._load(runner, room, hold_evicted)
        finally:
            if not lock.locked():
                self.loading.discard(runner.name)

    async def switch_to(self, runner: ModelRunner) -> None:
        """The management API's switch: the model replaces the loaded ones (held stopped), unless
        gateway.max_loaded leaves room for both."""
        await self.ensure_loaded(runner, room=(self.max_loaded or 1) - 1, hold_evicted=True)

    async def _load(self, runner: ModelRunner, room: int | None, hold_evicted: bool) -> None:
        await self._make_room(runner, room, hold_evicted)
        log.info("loading %s on demand", runner.name)
        try:
            await asyncio.wait_for(runner.start(), self.load_timeout)
        except asyncio.TimeoutError as exc:
            await runner.stop(2.0)
            raise EngineUnavailable(f"model {runner.name!r} did not load within {self.load_timeout:.0f}s") from exc
        except StartError as exc:
            raise EngineUnavailable(f"model {runner.name!r} failed to load: {exc}", retry_after=10) from exc
        self.touch(runner)

    async def _make_room(self, runner: ModelRunner, room: int | None, hold_evicted: bool) -> None:
        """Unload idle models until the devices hold `runner` (room.py: the fewest, least recently used first),
        then, least recently used first, until at most `room` others are loaded."""
        deadline = time.monotonic() + self.load_timeout
        await self._make_bytes(runner, hold_evicted, deadline)
        if room is None:
            return
        while True:
            others = [r for r in self.loaded() if r is not runner]
            if len(others) <= room:
                return
            idle = [r for r in others if not r.busy]
            if idle:
                victim = min(idle, key=lambda r: self.last_used.get(r.name, 0.0))
                log.info("unloading %s (least recently used) to load %s", victim.name, runner.name)
                victim.held = victim.held or hold_evicted
                await victim.stop()
                continue
            if time.monotonic() > deadline:
                raise ModelsBusy(f"the {len(others)} loaded models are busy; {runner.name!r} cannot load now")
            await asyncio.sleep(0.1)

    async def _make_bytes(self, runner: ModelRunner, hold_evicted: bool, deadline: float) -> None:
        while True:
            others = [r for r in self.loaded() if r is not runner]
            idle = sorted((r for r in others if not r.busy), key=lambda r: self.last_used.get(r.name, 0.0))
            chosen = self.room.victims(runner.name, [r.name for r in others], [r.name for r in idle])
            if chosen == []:
                return
            if chosen:
                for victim in (r for r in idle if r.name in chosen):
                    log.info("unloading %s to make room on its devices for %s", victim.name, runner.name)
                    victim.held = victim.held or hold_evicted
                    await victim.stop()
                continue
            if time.monotonic() > deadline:   # the models on its devices are busy: the request gets 503
                raise ModelsBusy(f"the models on {runner.name!r}'s devices are busy; it cannot load now")
            await asyncio.sleep(0.1)

    def preload_list(self) -> list[ModelRunner]:
        """The models to start with launcher: marked preload, as far as max_loaded allows.
        They count as starting from now on, so /ready is not 200 before they load."""
        wanted = [r for r in self.deployment.models if r.spec.preload]
        wanted = wanted[:self.max_loaded] if self.max_loaded is not None else wanted
        for r in wanted:
            r.mark_starting()
        return wanted

    def start_ttl_loop(self) -> None:
        if any(r.spec.ttl for r in self.deployment.models):
            self._ttl_task = asyncio.get_running_loop().create_task(self._ttl_loop())

    async def _ttl_loop(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for r in self.deployment.models:
                if r.spec.ttl and r.state == ModelState.READY and not r.busy \
                        and now - self.last_used.get(r.name, now) > r.spec.ttl:
                    log.info("unloading %s: idle for more than %ss", r.name, r.spec.ttl)
                    await r.stop()

    async def close(self) -> None:
        if self._ttl_task:
            self._ttl_task.cancel()
