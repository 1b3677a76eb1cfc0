"""Every line the supervised processes print (and launcher's own log), kept in one bounded history and
fanned out live: the source of `GET /logs`, `GET /logs/stream[/{model}]` and the console's log panel.
The per-process log files and the console echo are written beside it from the same lines (process.py).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from .fanout import Fanout

KEEP = 5000        # lines of history, all processes together
SUBSCRIBER_QUEUE = 2000  # a reader this far behind loses lines, never slows a process


@dataclass(frozen=True)
class LogLine:
    seq: int
    at: float
    model: str | None   # the model or worker it belongs to; None for launcher itself
    source: str         # the process, e.g. "gemma#0", or "launcher"
    text: str

    def format(self) -> str:
        return f"[{self.source}] {self.text}"


class LogHub(Fanout[LogLine]):
    def __init__(self, keep: int = KEEP):
        super().__init__(keep, SUBSCRIBER_QUEUE)
        self._seq = 0

    def push(self, model: str | None, source: str, text: str) -> None:
        with self._lock:  # numbered in the order they are kept: a stream tells history from live by it
            self._seq += 1
            self.publish(LogLine(self._seq, time.time(), model, source, text))

    def history(self, model: str | None = None) -> list[LogLine]:
        return [ln for ln in super().history() if model is None or ln.model == model]


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
