"""Python workers started and stopped by load (`processes: {min, max}`), as the anyserve documents' agent does.

Each worker has its own queue (slots.py: the line of requests waiting for one of its processes' threads);
that is the queue of the capabilities it serves. Every TICK the policy looks at each scaled worker:

    up    the first request in its line has waited longer than `scale_up_after`, fewer than max run, and none
          is starting: start one more (the plan reserved its port).
    down  a process above min has had no request for `scale_down_after` and nobody waits: it leaves the
          worker's upstreams in that same step (so no request can be given to it) and is stopped.

The policy is `step`, a plain function of the worker, the queue and the clock, so tests drive it directly.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from ..supervise.runner import ModelRunner, Upstream
from ..supervise.states import ModelState

log = logging.getLogger("launcher.scaling")
TICK = 0.1


class Idle:
    """When each process last had a request (a sample each tick: its in-flight count and served total)."""

    def __init__(self):
        self.seen: dict[int, tuple[int, float]] = {}   # id(upstream) -> (served, idle since)

    def since(self, up: Upstream, now: float) -> float | None:
        """When `up` became idle, or None while it works."""
        last = self.seen.get(id(up))
        if up.in_flight or last is None or last[0] != up.served:
            self.seen[id(up)] = (up.served, now)
            return None if up.in_flight else now
        return last[1]


def step(worker: ModelRunner, waited: float, idle: Idle, now: float) -> tuple[str, Upstream | None] | None:
    """What to do now: ("up", None), ("down", the process to stop) or None."""
    spec = worker.spec
    if worker.state != ModelState.READY or worker.scaling:
        return None
    running = len(worker.upstreams)
    if waited > spec.scale_up_after and running < spec.max_processes:
        return "up", None
    idle_for = [(now - since, up) for up in worker.upstreams if (since := idle.since(up, now)) is not None]
    if running > spec.processes and waited == 0:
        longest = max(idle_for, default=None, key=lambda pair: pair[0])
        if longest and longest[0] >= spec.scale_down_after:
            return "down", longest[1]
    return None


class Autoscaler:
    def __init__(self, workers: Callable[[], tuple[ModelRunner, ...]], slots, metrics):
        self.workers, self.slots, self.metrics = workers, slots, metrics
        self.idle: dict[str, Idle] = {}
        self._task: asyncio.Task | None = None
        self._busy: set[asyncio.Task] = set()

    def start(self) -> None:
        if any(w.spec.scales for w in self.workers()):
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            for worker in self.workers():
                if worker.spec.scales:
                    self._act(worker, now)

    def _act(self, worker: ModelRunner, now: float) -> None:
        decision = step(worker, self.slots.oldest_wait(worker, now), self.idle.setdefault(worker.name, Idle()), now)
        if decision is not None:
            what, up = decision
            worker.scaling = True  # one change at a time per worker
            log.info("[%s] %s: %d -> %d processes", worker.name, "requests wait" if what == "up" else "idle",
                     len(worker.upstreams) + (1 if what == "down" else 0), len(worker.upstreams) + (1 if what == "up" else 0))
            stopping = worker.retire(up) if up is not None else None  # out of rotation in this very step
            task = asyncio.get_running_loop().create_task(self._change(worker, stopping))
            self._busy.add(task)
            task.add_done_callback(self._busy.discard)
        self.metrics.worker_processes.labels(worker.name).set(len(worker.upstreams))

    async def _change(self, worker: ModelRunner, stopping) -> None:
        try:
            if stopping is not None:
                await stopping
            elif await worker.add_process():
                self.slots.wake(worker)  # the new process's threads go to the first in line
        except Exception:  # a bug: log it, keep scaling the others
            log.exception("[%s] scaling failed", worker.name)
        finally:
            worker.scaling = False

    async def close(self) -> None:
        for task in (self._task, *self._busy):
            if task is not None:
                task.cancel()
        for task in (self._task, *self._busy):
            if task is not None:
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
