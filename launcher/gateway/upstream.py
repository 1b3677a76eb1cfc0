"""A lean HTTP/1.1 client for streamed engine answers: one new connection per stream, the response
parsed by httptools (C) straight from the socket callbacks, the body handed over chunk by chunk.

Measured (`launch bench cost`): httpx + httpcore + anyio spent about 200 µs of CPU per streamed chunk
(a cancel scope and a timeout per read, h11's event machinery, exception mapping); this does the same
work in a few µs. Streams never reuse connections anyway: llama-server closes after every streamed
answer, so the request says `Connection: close`. Errors are httpx's exception types, so the retry
rule and the stream's error events stay as they are.
"""
from __future__ import annotations

import asyncio
import collections
from typing import Awaitable, Callable
from urllib.parse import urlsplit

import httptools
import httpx

HIGH_WATER = 64      # chunks held before the socket stops being read (a slow client pushes back)


class StreamResponse:
    """The parts of httpx.Response the forwarder uses: status_code, headers, aread, aiter_raw, aiter_lines,
    aclose."""

    def __init__(self, protocol: "_StreamProtocol"):
        self._p = protocol
        self.status_code = protocol.status
        self.headers = httpx.Headers(protocol.headers)

    async def aiter_raw(self):
        p = self._p
        while True:
            while p.chunks:
                chunk = p.chunks.popleft()
                if p.paused and len(p.chunks) < HIGH_WATER // 2:
                    p.resume()
                yield chunk
            if p.error is not None:
                raise p.error
            if p.complete:
                return
            await p.wait()

    async def relay(self, sink: Callable[[bytes], Awaitable | None]) -> None:
        """Hand every body chunk to `sink` from the socket callback itself (no task switch per chunk) until
        the answer ends; raises the stream's error. A sink that returns an awaitable (the client is slow)
        stops the reading until it is done."""
        p = self._p
        p.sink = sink   # from now on the socket callback hands data to the sink; what came before goes first
        backlog = b"".join(p.chunks)
        p.chunks.clear()
        pending = sink(backlog) if backlog else None
        if pending is not None:
            p.pause()
            await pending
        if p.paused:
            p.resume()
        while p.error is None and not p.complete:
            await p.wait()
        if p.error is not None:
            raise p.error

    async def aiter_lines(self):
        pending = ""
        async for chunk in self.aiter_raw():
            pending += chunk.decode("utf-8", errors="replace")
            *lines, pending = pending.split("\n")
            for line in lines:
                yield line.rstrip("\r")
        if pending:
            yield pending

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_raw()])

    async def aclose(self) -> None:
        self._p.close()


class _StreamProtocol(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, read_timeout: float):
        self.loop, self.read_timeout = loop, read_timeout
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: collections.deque[bytes] = collections.deque()
        self.head_done = loop.create_future()
        self.waiter: asyncio.Future | None = None
        self.complete = self.paused = False
        self.error: Exception | None = None
        self.last_read = loop.time()
        self.timer: asyncio.TimerHandle | None = None
        self.sink: Callable[[bytes], Awaitable | None] | None = None   # relay mode (StreamResponse.relay)
        self.relayed: list[bytes] = []
        self.resuming: asyncio.Future | None = None   # reading resumes when the sink's pending write is done

    # asyncio callbacks
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.last_read = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed response from the engine: {exc}"))
        if self.relayed:  # everything this read brought, in one piece
            data, self.relayed = b"".join(self.relayed), []
            pending = self.sink(data)
            if pending is not None:
                self.pause()
                self.resuming = asyncio.ensure_future(self._resume_after(pending))

    async def _resume_after(self, pending: Awaitable) -> None:
        try:
            await pending
        finally:
            self.resume()

    def connection_lost(self, exc) -> None:
        if not self.complete:
            self._fail(httpx.ReadError("the engine closed the connection mid-answer") if self.head_done.done()
                       else httpx.RemoteProtocolError("the engine closed the connection without an answer"))
        if self.timer:
            self.timer.cancel()

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if not self.head_done.done():
            self.head_done.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.sink is not None:
            self.relayed.append(body)
            return
        self.chunks.append(body)
        if len(self.chunks) >= HIGH_WATER:
            self.pause()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()

    # the consumer's side
    async def wait(self) -> None:
        self.waiter = self.loop.create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    def pause(self) -> None:
        """Stop reading the engine: the consumer is behind (the engine then waits on its socket)."""
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        self.paused = False
        if self.transport and not self.transport.is_closing():
            self.transport.resume_reading()

    def close(self) -> None:
        if self.transport and not self.transport.is_closing():
            self.transport.close()
        if self.timer:
            self.timer.cancel()

    def start_timer(self) -> None:
        self.timer = self.loop.call_at(self.last_read + self.read_timeout, self._check_idle)

    def _check_idle(self) -> None:
        # One timer, moved only when it fires: cheaper than re-arming it for every chunk.
        due = self.last_read + self.read_timeout
        if self.complete or self.error:
            return
        if self.loop.time() >= due:
            self._fail(httpx.ReadTimeout(f"no bytes from the engine for {self.read_timeout:g} s"))
            self.close()
        else:
            self.timer = self.loop.call_at(due, self._check_idle)

    def _fail(self, exc: Exception) -> None:
        if self.error is None and not self.complete:
            self.error = exc
        if not self.head_done.done():
            self.head_done.set_exception(exc)
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


async def open_stream(url: str, body: bytes, headers: dict, connect_timeout: float,
                      read_timeout: float) -> StreamResponse:
    """POST `body` to `url` on a new connection; returns once the response head is in. Raises httpx's
    ConnectError / ConnectTimeout (nothing was sent), RemoteProtocolError (sent, no answer), ReadTimeout."""
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    protocol = _StreamProtocol(loop, read_timeout)
    try:
        await asyncio.wait_for(loop.create_connection(lambda: protocol, parts.hostname, parts.port or 80),
                               connect_timeout)
    except asyncio.TimeoutError as exc:
        raise httpx.ConnectTimeout(f"no connection to {parts.netloc} within {connect_timeout:g} s") from exc
    except OSError as exc:
        raise httpx.ConnectError(f"cannot connect to {parts.netloc}: {exc.strerror or exc}") from exc
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    head = [f"POST {path} HTTP/1.1\r\nhost: {parts.netloc}\r\ncontent-length: {len(body)}\r\n"]
    head += [f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
    assert protocol.transport is not None
    protocol.transport.write("".join(head).encode("latin-1") + b"\r\n" + body)
    protocol.start_timer()
    try:
        await protocol.head_done
    except BaseException:
        protocol.close()
        raise
    return StreamResponse(protocol)
