"""Recent requests, for the console: one record per answered request (model, protocol, endpoint, status,
duration, and for streams the tokens sent and the time to the first one), kept in a short history and
fanned out to `/api/events` readers. Recorded when a request is released (dispatch.py)."""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Iterator

KEEP = 200


class Activity:
    def __init__(self, keep: int = KEEP):
        self.recent: deque[dict] = deque(maxlen=keep)
        self._readers: list[asyncio.Queue] = []

    def record(self, model: str, protocol: str, endpoint: str, status: int, seconds: float,
               tokens_out: int | None = None, ttft: float | None = None) -> None:
        entry = {"at": time.time(), "model": model, "protocol": protocol, "endpoint": endpoint, "status": status,
                 "duration_ms": round(seconds * 1000, 1), "tokens_out": tokens_out,
                 "ttft_ms": round(ttft * 1000, 1) if ttft is not None else None,
                 "tokens_per_s": round(tokens_out / (seconds - ttft), 1)
                 if tokens_out and ttft is not None and seconds > ttft and tokens_out > 1 else None}
        self.recent.append(entry)
        for queue in self._readers:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(entry)

    @contextlib.contextmanager
    def follow(self) -> Iterator[asyncio.Queue]:
        queue: asyncio.Queue = asyncio.Queue(500)
        self._readers.append(queue)
        try:
            yield queue
        finally:
            self._readers.remove(queue)
