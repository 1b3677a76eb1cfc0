"""What happens to served models, as events: the one way the gateway, metrics, shutdown (and later
the console and discovery) learn of models added, state changes, restarts and failures."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from .states import ModelState, _Named

log = logging.getLogger("launcher.events")


class EventKind(_Named):
    ADDED = "added"          # a model joined the deployment
    REMOVED = "removed"      # a model left it (replaced by a switch)
    STATE = "state"          # a model's state changed
    RESTARTED = "restarted"  # an engine process exited unasked and is being restarted
    FAILED = "failed"        # restart limit reached: the model stays down
    SCALED = "scaled"        # a worker scaled by load started or stopped a process (`detail` says how many now)
    CONFIG = "config"        # the config file was reloaded, or a reload was refused (model "", `data` says)


@dataclass(frozen=True)
class Event:
    kind: EventKind
    model: str
    state: ModelState | None = None
    detail: str = ""
    at: float = field(default_factory=time.time)
    data: dict | None = None


Subscriber = Callable[[Event], None]


class EventBus:
    """Synchronous fan-out. Subscribers must be quick (queue the event if they do I/O); one that
    raises is logged and does not stop the others."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn) if fn in self._subscribers else None

    def emit(self, event: Event) -> None:
        for fn in list(self._subscribers):
            try:
                fn(event)
            except Exception:  # a broken subscriber must not break supervision; it is a bug: log it
                log.exception("event subscriber %r failed on %s", fn, event)
