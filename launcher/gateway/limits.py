"""Limits against hostile or broken clients, each a `gateway:` key with a documented default:

    max_body_bytes  a request body larger than this is refused with 413 (by Content-Length at once, else
                    as soon as the body read so far passes it)
    body_timeout    a body that stalls longer than this between chunks is refused with 408
    header_timeout  a connection whose request headers are not complete this long after it opened (or
                    after its previous answer) is closed: a slowloris client holds no socket for long
    max_tokens      capped at the model's context (`n_ctx`, when the config sets it)

The body checks run only while a body is being read: streaming answers do not pass through them.
"""
from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..errors import APIError, PayloadTooLarge
from ..protocols.envelopes import error_response
from .direct import attach
from .shared_port import looks_like_http2


class RequestTimeout(APIError):
    status, type, code = 408, "invalid_request_error", "request_timeout"


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float):
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            return await error_response(scope["path"], self._too_large())(scope, receive, send)
        received, done = 0, False

        async def guarded() -> dict:
            nonlocal received, done
            if done:  # the body is in: later receives wait for a disconnect, for as long as a stream runs
                return await receive()
            try:
                message = await _within(receive(), self.timeout)
            except asyncio.TimeoutError:
                raise RequestTimeout(f"the request body stalled for more than {self.timeout:g}s "
                                     "(gateway.body_timeout)") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
                done = not message.get("more_body", False)
            return message
        await self.app(scope, guarded, send)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"the request body is larger than {self.max_bytes} bytes (gateway.max_body_bytes)")


async def _within(awaitable, seconds: float):
    """`asyncio.timeout` where there is one (3.11+): a timer, where wait_for makes a task (~10 µs a request)."""
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)


class GuardedHttp(HttpToolsProtocol):
    """uvicorn's HTTP protocol with a deadline for each request's headers; with `grpc`, a connection that
    opens with HTTP/2's preface is handed to the gateway's gRPC protocol (shared_port.py)."""
    header_timeout = 10.0
    grpc = None   # kserve.grpc_http2.GrpcServer

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline = None
        self._sniffing, self._head = self.grpc is not None, b""
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._sniffing:
            data, self._head = self._head + data, b""
            verdict = looks_like_http2(data)
            if verdict is None:  # too short to tell yet
                self._head = data
                return
            self._sniffing = False
            if verdict:
                self._disarm()
                self.connections.discard(self)  # uvicorn no longer owns it
                self.grpc.adopt(self.transport, data)
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        if self.cycle is not None and self.cycle.scope is self.scope:  # the streaming fast path (direct.py)
            attach(self.scope, self.cycle)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets the same deadline

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if getattr(self, "_header_deadline", None) is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()


def http_protocol(header_timeout: float, grpc=None) -> type[GuardedHttp]:
    """The protocol class uvicorn is given (`uvicorn.Config(http=...)`); `grpc`: the app's GrpcServer."""
    return type("GuardedHttp", (GuardedHttp,), {"header_timeout": header_timeout, "grpc": grpc})


def cap_max_tokens(body: dict, n_ctx: int | None) -> bool:
    """Lower `max_tokens` / `max_completion_tokens` to the context; True if the body changed."""
    if not n_ctx:
        return False
    changed = False
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > n_ctx:
            body[key] = n_ctx
            changed = True
    return changed
