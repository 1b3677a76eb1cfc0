"""What a request is dispatched to: a `Target`. A model or worker this launcher runs (runner.ModelRunner) and
a replica another gateway registered (gateway.registry.RemoteReplica) are its two implementations; routing,
dispatch, the pool's pinning and the forwarder use nothing else of them.
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from .states import ModelState


@runtime_checkable
class Endpoint(Protocol):
    """One upstream a target forwards to."""
    url: str
    slots: int
    in_flight: int
    served: int

    @property
    def ready(self) -> bool: ...


@runtime_checkable
class Target(Protocol):
    state: ModelState
    pending: int                 # requests between routing and reaching an upstream (pins it against eviction)
    held: bool                   # stopped on purpose: not loaded on demand
    request_defaults: dict       # added to requests that leave them out
    upstreams: Sequence[Endpoint]

    @property
    def name(self) -> str: ...

    @property
    def is_worker(self) -> bool: ...

    @property
    def capabilities(self) -> list[dict]: ...

    @property
    def load(self) -> float: ...

    @property
    def busy(self) -> bool: ...

    def pick(self, exclude=()) -> Endpoint | None: ...


class Upstreams:
    """Load, busy and pick over `self.upstreams` and `self.pending`: the one rule both targets follow."""
    upstreams: Sequence[Endpoint]
    pending: int

    @property
    def load(self) -> float:
        """Requests in flight or on their way, per slot of the ready upstreams."""
        slots = sum(u.slots for u in self.upstreams if u.ready) or 1
        return (self.pending + sum(u.in_flight for u in self.upstreams)) / slots

    @property
    def busy(self) -> bool:
        return self.pending > 0 or any(u.in_flight for u in self.upstreams)

    def pick(self, exclude=()) -> Endpoint | None:
        """The ready upstream with the most free slots (fewest in-flight per slot), not in `exclude`."""
        ready = [u for u in self.upstreams if u.ready and u not in exclude]
        if not ready:
            return None
        return min(ready, key=lambda u: (u.in_flight / max(u.slots, 1), u.in_flight))
