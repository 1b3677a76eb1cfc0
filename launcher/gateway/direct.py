"""The streaming fast path's other end: body chunks of a started response written straight to the
client's socket, from the upstream socket's callback, with no task switch and no ASGI layers per chunk.

The gateway's HTTP protocol (limits.GuardedHttp, uvicorn's httptools protocol) puts a `DirectBody` for
each request in the ASGI scope's extensions. It writes only while uvicorn's own state says a chunked
response is under way; the response's start and its end still go through ASGI `send`, so uvicorn's
bookkeeping stays whole. Anything else (another server, another protocol) takes the ASGI path.
"""
from __future__ import annotations

EXTENSION = "launcher.direct_body"


class DirectBody:
    __slots__ = ("cycle",)

    def __init__(self, cycle):
        self.cycle = cycle   # uvicorn's RequestResponseCycle of this request

    @property
    def usable(self) -> bool:
        c = self.cycle
        return bool(c.response_started and not c.response_complete and c.chunked_encoding and not c.disconnected)

    @property
    def disconnected(self) -> bool:
        return self.cycle.disconnected

    @property
    def paused(self) -> bool:
        """The client reads slower than we write: stop reading the engine until `drain`."""
        return self.cycle.flow.write_paused

    def write(self, data: bytes) -> None:
        if data and not self.cycle.disconnected:
            self.cycle.transport.write(b"%x\r\n%b\r\n" % (len(data), data))

    async def drain(self) -> None:
        await self.cycle.flow.drain()


def attach(scope: dict, cycle) -> None:
    """Offer the fast path for this request, when uvicorn's cycle has what it needs."""
    if all(hasattr(cycle, a) for a in ("response_started", "response_complete", "chunked_encoding", "disconnected",
                                       "transport", "flow")):
        scope.setdefault("extensions", {})[EXTENSION] = DirectBody(cycle)


def direct_body(scope: dict) -> DirectBody | None:
    return (scope.get("extensions") or {}).get(EXTENSION)
