"""The state machines of supervision, as enums whose values are the strings the APIs show.

Process:  stopped -> starting -> ready -> stopping -> stopped
                        |          |
                        +--------> failed (exited unasked, or never became healthy)

Model:    stopped -> starting -> ready <-> restarting -> failed (restart limit reached)
             ^                     |
             +------ (stop) -------+
"""
from __future__ import annotations

from enum import Enum


class _Named(str, Enum):
    """Compares, formats and serialises as its value (what enum.StrEnum does from Python 3.11)."""

    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__


class ProcessState(_Named):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"
    FAILED = "failed"


class ModelState(_Named):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    RESTARTING = "restarting"
    FAILED = "failed"

    @property
    def loaded(self) -> bool:
        """Holds (or is getting) engine processes: counts against gateway.max_loaded."""
        return self in (ModelState.STARTING, ModelState.READY, ModelState.RESTARTING)

    @property
    def serving(self) -> bool:
        """Can take requests now, or will again without a load (a restart is under way)."""
        return self in (ModelState.READY, ModelState.RESTARTING)
