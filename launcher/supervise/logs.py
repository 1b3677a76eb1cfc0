"""Every line the supervised processes print (and launcher's own log), kept in one bounded history and
fanned out live: the source of `GET /logs`, `GET /logs/stream[/{model}]` and the console's log panel.
The per-process log files and the console echo are written beside it from the same lines (process.py).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Iterator

KEEP = 5000        # lines of history, all processes together
SUBSCRIBER_QUEUE = 2000  # a reader this far behind loses lines (and is told so), never slows a process


@dataclass(frozen=True)
class LogLine:
    seq: int
    at: float
    model: str | None   # the model or worker it belongs to; None for launcher itself
    source: str         # the process, e.g. "gemma#0", or "launcher"
    text: str

    def format(self) -> str:
        return f"[{self.source}] {self.text}"


class LogHub:
    def __init__(self, keep: int = KEEP):
        self.lines: deque[LogLine] = deque(maxlen=keep)
        self._seq = 0
        self._lock = threading.Lock()  # launcher's own log lines may come from other threads
        self._readers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = []

    def push(self, model: str | None, source: str, text: str) -> None:
        with self._lock:
            self._seq += 1
            line = LogLine(self._seq, time.time(), model, source, text)
            self.lines.append(line)
            readers = list(self._readers)
        for loop, queue in readers:
            if loop.is_closed():
                continue
            loop.call_soon_threadsafe(_offer, queue, line)

    def history(self, model: str | None = None) -> list[LogLine]:
        with self._lock:
            return [ln for ln in self.lines if model is None or ln.model == model]

    @contextlib.contextmanager
    def follow(self) -> Iterator[asyncio.Queue]:
        """A queue of the lines pushed from now on (a None marks lines lost to a slow reader)."""
        entry = (asyncio.get_running_loop(), asyncio.Queue(SUBSCRIBER_QUEUE))
        with self._lock:
            self._readers.append(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                self._readers.remove(entry)


def _offer(queue: asyncio.Queue, line: LogLine) -> None:
    try:
        queue.put_nowait(line)
    except asyncio.QueueFull:
        pass  # the reader is too slow; it keeps the lines it has


class HubHandler(logging.Handler):
    """launcher's own log records into the hub, as source "launcher"."""

    def __init__(self, hub: LogHub):
        super().__init__(logging.INFO)
        self.hub = hub

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.hub.push(None, "launcher", self.format(record))
        except Exception:  # logging must never raise into the caller
            self.handleError(record)
