"""Admission to a model's engine slots, first come first served.

A request takes a free slot of a ready upstream (the least loaded), or waits in its model's line. At most
`gateway.max_queue` requests wait per model; one more gets 429 with Retry-After (as llama-swap answers),
never an unbounded queue. A request for a model that is starting or restarting waits for it, up to
`gateway.load_timeout`, instead of failing at once; a model that failed for good answers 503.

The slot is the gateway's own count (`Upstream.in_flight`): every path that takes one gives it back
through `release`, which hands it to the first in line.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque

from ..errors import EngineUnavailable, QueueFull
from ..supervise.states import ModelState

POLL = 0.25  # a waiting request looks again this often (upstreams come back without a release)


class Line:
    """One model's waiting requests, in arrival order."""

    def __init__(self) -> None:
        self.waiting: deque[asyncio.Future] = deque()


class SlotQueue:
    def __init__(self, max_queue: int, load_timeout: float, queue_timeout: float, metrics=None):
        self.max_queue, self.load_timeout, self.queue_timeout = max_queue, load_timeout, queue_timeout
        self.metrics = metrics
        self._lines: dict[int, Line] = {}

    def _count(self, runner) -> None:
        if self.metrics is not None:
            self.metrics.queued.labels(runner.name).set(sum(not f.done() for f in self.line(runner).waiting))

    def line(self, runner) -> Line:
        return self._lines.setdefault(id(runner), Line())

    def waiting(self, runner) -> int:
        return len(self.line(runner).waiting)

    def oldest_wait(self, runner, now: float) -> float:
        """Seconds the first request in the model's line has waited (0 with nobody waiting)."""
        waiting = [f for f in self.line(runner).waiting if not f.done()]
        return now - waiting[0].since if waiting else 0.0

    async def acquire(self, runner, exclude=(), first: bool = False):
        """A slot: returns the upstream it is on (its in_flight counts the request). `first`: a retry of a
        request that already had a slot goes before the ones in line (it arrived before them)."""
        line = self.line(runner)
        if not line.waiting or first:
            up = self._free(runner, exclude)
            if up is not None:
                up.in_flight += 1
                return up
        if runner.state == ModelState.FAILED:
            raise EngineUnavailable(f"model {runner.name!r} failed and is not restarting", retry_after=30)
        if len(line.waiting) >= self.max_queue:
            if self.metrics is not None:
                self.metrics.refused.labels(runner.name, "queue_full").inc()
            raise QueueFull(f"model {runner.name!r}: every engine slot is busy and {len(line.waiting)} requests "
                            "already wait (gateway.max_queue); retry shortly")
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        future.exclude = exclude  # type: ignore[attr-defined]
        future.since = time.monotonic()  # type: ignore[attr-defined]  (what scaling by load looks at)
        line.waiting.appendleft(future) if first else line.waiting.append(future)
        self._count(runner)
        started = time.monotonic()
        try:
            while True:
                try:
                    return await asyncio.wait_for(asyncio.shield(future), POLL)
                except asyncio.TimeoutError:
                    pass
                self.wake(runner)  # an upstream may have become ready (a restart ended) with no release
                if future.done():
                    return future.result()
                if runner.state == ModelState.FAILED:
                    raise EngineUnavailable(f"model {runner.name!r} failed while this request waited",
                                            retry_after=30)
                coming = runner.state in (ModelState.STARTING, ModelState.RESTARTING, ModelState.STOPPED)
                limit = self.load_timeout if coming else self.queue_timeout
                if time.monotonic() - started > limit:
                    why = f"is {runner.state}" if coming else "had no free engine slot"
                    raise EngineUnavailable(f"model {runner.name!r} {why} for {limit:g}s; retry later",
                                            retry_after=5)
        except BaseException:
            if future.done() and not future.cancelled() and future.exception() is None:
                self.release(runner, future.result())  # a slot was handed over as we gave up: pass it on
            else:
                future.cancel()
            if future in line.waiting:
                line.waiting.remove(future)
            self._count(runner)
            raise

    def release(self, runner, up, wake: bool = True) -> None:
        """Give a slot back and hand it to the first in line (`wake=False`: the caller takes it back
        itself at once, with `acquire(first=True)`)."""
        up.in_flight -= 1
        if wake:
            self.wake(runner)

    def wake(self, runner) -> None:
        """Hand free slots to the first in line."""
        line = self.line(runner)
        while line.waiting:
            first = line.waiting[0]
            if first.done():
                line.waiting.popleft()
                continue
            up = self._free(runner, getattr(first, "exclude", ()))
            if up is None:
                return
            line.waiting.popleft()
            up.in_flight += 1
            first.set_result(up)
            self._count(runner)

    @staticmethod
    def _free(runner, exclude):
        """A free slot, never on an excluded upstream (one a retry just failed on) while another replica is
        ready, even a busy one: then it waits for that one. With no other replica, the same one again."""
        ready = [u for u in runner.upstreams if u.ready]
        others = [u for u in ready if u not in exclude] or ready
        free = [u for u in others if u.in_flight < max(u.slots, 1)]
        return min(free, key=lambda u: (u.in_flight / max(u.slots, 1), u.in_flight)) if free else None
