"""Each model's recent tokens/s and queue depth, for the console's sparklines: sampled every 2 s from the
gateway's own counters (completion tokens, requests waiting for a slot), so a console opened now still
sees the last three minutes."""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

EVERY = 2.0
KEEP = 90   # three minutes at one sample every 2 s


def _by_model(metric) -> dict[str, float]:
    return {s.labels["model"]: s.value for family in metric.collect() for s in family.samples
            if not s.name.endswith("_created")}


class Trends:
    def __init__(self, keep: int = KEEP):
        self.keep = keep
        self.tokens_per_s: dict[str, deque[float]] = {}
        self.queued: dict[str, deque[int]] = {}
        self._last: tuple[float, dict[str, float]] | None = None
        self._task: asyncio.Task | None = None

    def sample(self, tokens: dict[str, float], queued: dict[str, float], now: float) -> None:
        """One sample from the completion-token totals and the queue depths by model."""
        if self._last is not None and now > self._last[0]:
            then, before = self._last
            for model in tokens.keys() | before.keys():
                rate = max(0.0, tokens.get(model, 0.0) - before.get(model, 0.0)) / (now - then)
                self.tokens_per_s.setdefault(model, deque(maxlen=self.keep)).append(round(rate, 1))
        for model in queued.keys() | self.queued.keys():
            self.queued.setdefault(model, deque(maxlen=self.keep)).append(int(queued.get(model, 0)))
        self._last = (now, dict(tokens))

    def of(self, model: str) -> dict:
        return {"tokens_per_s": list(self.tokens_per_s.get(model, ())), "queued": list(self.queued.get(model, ()))}

    def start(self, metrics) -> None:
        async def run() -> None:
            while True:
                self.sample(_by_model(metrics.tokens), _by_model(metrics.queued), time.monotonic())
                await asyncio.sleep(EVERY)
        self._task = asyncio.get_running_loop().create_task(run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
