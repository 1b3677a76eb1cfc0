"""Forward one request to an engine: pick an upstream, retry once if nothing was received,
pass SSE bytes through untouched, and close the upstream the moment the client goes away.

The gateway shares the CPU with the engines, so streamed bytes are not parsed: the only
per-chunk work is counting token events and looking for the stream's end (OpenAI's [DONE]).
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Callable

import httpx
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..errors import APIError, BadRequest, EngineUnavailable, NotFound, UpstreamError
from ..protocols.envelopes import OPENAI, family_for, normalize_upstream_error
from ..protocols.sse import OPENAI_STREAM, SSEResponse, StreamKind, until_done_or_disconnected
from ..supervise.runner import ModelRunner, Upstream
from .capture import capturing
from .direct import DirectBody, direct_body
from .metrics import Metrics
from .quota import report, usage_in
from .slots import SlotQueue
from .upstream import StreamResponse, open_stream

log = logging.getLogger("launcher.gateway")
RETRYABLE = (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError,
             httpx.ConnectTimeout, httpx.PoolTimeout)
TAKEN = (httpx.RemoteProtocolError, httpx.ReadError)  # the request was written; no answer came back
RETRY_PAUSE = 1.0  # at most; the supervisor normally sees a dead engine within milliseconds
JSON_HEADERS = {"content-type": "application/json"}
STREAM_HEADERS = JSON_HEADERS | {"connection": "close"}


async def _until(condition: Callable[[], bool], timeout: float, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(step)


class Fresh:
    """httpcore trace hook: did this request open a new connection (see Forwarder.open)?"""
    __slots__ = ("connected",)

    def __init__(self):
        self.connected = False

    async def __call__(self, event: str, info: dict) -> None:
        if event == "connection.connect_tcp.complete":
            self.connected = True


class Forwarder:
    def __init__(self, client: httpx.AsyncClient, metrics: Metrics, slots: SlotQueue):
        self.client, self.metrics, self.slots = client, metrics, slots

    async def open(self, runner: ModelRunner, path: str, body: bytes | None, headers: dict | None = None,
                   replayable: bool = True, streamed: bool = False,
                   method: str = "POST") -> tuple[Upstream, httpx.Response | StreamResponse]:
        """Take a slot (slots.py: FIFO, 429 beyond max_queue) and send; on a failure before any answer, retry
        once (on another replica if there is one) when that is safe, by Go's net/http rule: always if no
        connection was made; if the request was written, only when it is `replayable` (generation is; a
        Python worker's handler may not be) and went over a reused keep-alive connection (one the engine
        may have closed as idle). A request written on a new connection that then died was taken by an
        engine that crashed with it, or was in the backlog of one being killed: never again on that engine
        (it may be what crashed it), but once on another ready replica; with none, 503. The caller gives
        the slot back with `release`.

        A `streamed` request asks for `Connection: close`: llama-server closes the connection after every
        streamed answer without saying so (measured: EOF right after the last chunk, no header), so pooled
        it would be stale exactly when the next request in line takes it over with the freed slot."""
        headers = headers or (STREAM_HEADERS if streamed else JSON_HEADERS)
        tried: list[Upstream] = []
        last: Exception | None = None
        for attempt in range(2):
            up = await self.slots.acquire(runner, exclude=tried, first=bool(tried))
            fresh = Fresh()
            try:
                if streamed:  # a new connection every time (see above), read by the lean client
                    fresh.connected = True
                    timeout = self.client.timeout
                    resp = await open_stream(up.url + path, body, headers, timeout.connect or 5.0, timeout.read or 600.0)
                else:
                    req = self.client.build_request(method, up.url + path, content=body, extensions={"trace": fresh},
                                                    headers=headers)
                    resp = await self.client.send(req, stream=True)
                up.served += 1
                return up, resp
            except RETRYABLE as exc:
                taken = isinstance(exc, TAKEN) and (fresh.connected or not replayable)
                elsewhere = [u for u in runner.upstreams if u.ready and u is not up and u not in tried]
                final = attempt == 1 or (taken and not (replayable and elsewhere))
                # a retry takes its slot back at once, ahead of the line; otherwise the line gets it
                self.slots.release(runner, up, wake=final)
                if taken and final:
                    raise EngineUnavailable(f"engine of {runner.name!r} failed during the request "
                                            f"({type(exc).__name__}); retry") from exc
                tried.append(up)
                last = exc
                if final:
                    break
                if not isinstance(exc, TAKEN) and all(u in tried for u in runner.upstreams if u.ready):
                    # no connection and no other replica: let the supervisor see the crash first, so the
                    # retry waits for the restart instead of knocking on a dead port again
                    try:
                        await _until(lambda: not up.ready, RETRY_PAUSE)
                    except BaseException:
                        self.slots.wake(runner)
                        raise
            except BaseException:  # cancelled (client gone) or unexpected: the slot must not leak
                self.release(runner, up)
                raise
        raise EngineUnavailable(f"model {runner.name!r} is {runner.state}: no engine could take the request "
                                f"({type(last).__name__})")

    def release(self, runner: ModelRunner, up: Upstream) -> None:
        self.slots.release(runner, up)

    async def complete(self, runner: ModelRunner, path: str, body: bytes | None, receive: Receive,
                       method: str = "POST", raw: bool = False) -> Response:
        """Non-streamed: fetch the whole answer, unless the client disconnects first (then cancel,
        which closes the upstream connection and so frees the engine's slot). `raw`: the engine's answer
        as it is, errors included."""
        fetched = await until_done_or_disconnected(self.fetch(runner, path, body, method=method), receive)
        if fetched is None:
            return Response(status_code=499)  # nobody is there to read it
        status, headers, content = fetched
        media_type = headers.get("content-type", "application/json")
        if raw:
            return Response(content, status_code=status, media_type=media_type)
        if status >= 400:
            return _upstream_error(status, content, path)
        self._count_usage(runner.name, content)
        return Response(content, status_code=status, media_type=media_type)

    async def fetch(self, runner: ModelRunner, path: str, body: bytes | None, headers: dict | None = None,
                    replayable: bool = True, method: str = "POST") -> tuple[int, httpx.Headers, bytes]:
        """One whole upstream answer: status, headers, bytes."""
        up, resp = await self.open(runner, path, body, headers, replayable, method=method)
        try:
            content = await resp.aread()
        except RETRYABLE as exc:
            raise EngineUnavailable(f"engine of {runner.name!r} failed during the request "
                                    f"({type(exc).__name__}); retry") from exc
        finally:
            await resp.aclose()
            self.release(runner, up)
        return resp.status_code, resp.headers, content

    async def stream(self, runner: ModelRunner, path: str, body: bytes, kind: StreamKind = OPENAI_STREAM) -> Response:
        up, resp = await self.open(runner, path, body, streamed=True)
        if resp.status_code >= 400:
            try:
                content = await resp.aread()
            finally:
                await resp.aclose()
                self.release(runner, up)
            return _upstream_error(resp.status_code, content, path)
        return SSEPassthrough(lambda: self.release(runner, up), resp, self.metrics, runner.name, kind)

    async def call_json(self, runner: ModelRunner, path: str, payload: dict) -> dict:
        """One non-streamed engine call, decoded; an engine error becomes the matching APIError."""
        status, _, content = await self.fetch(runner, path, json.dumps(payload).encode())
        if status >= 400:
            raise engine_error(status, content)
        body = json.loads(content)
        self._count(runner.name, body.get("usage") if isinstance(body, dict) else None)
        return body

    def _count_usage(self, model: str, content: bytes) -> None:
        try:
            usage = json.loads(content).get("usage")
        except (ValueError, AttributeError):
            return
        self._count(model, usage)

    def _count(self, model: str, usage: dict | None) -> None:
        """The engine's token counts: into the metrics, and to the request's key (quota.report)."""
        usage = usage if isinstance(usage, dict) else {}
        prompt = usage.get("prompt_tokens") or usage.get("input_tokens") or 0
        completion = usage.get("completion_tokens") or usage.get("output_tokens") or 0
        self.metrics.tokens.labels(model).inc(completion)
        self.metrics.prompt_tokens.labels(model).inc(prompt)
        report(prompt, completion)


class EngineStreamError(UpstreamError):
    """The engine failed, or stopped, in the middle of a stream."""
    code = "upstream_error"


def engine_error(status: int, content: bytes) -> APIError:
    """An engine's error answer as launcher's own error, keeping its status class and message."""
    message = normalize_upstream_error(status, content)["error"]["message"]
    if status == 400:
        return BadRequest(message)
    if status == 404:
        return NotFound(message)
    if status == 503:
        return EngineUnavailable(message)
    return UpstreamError(f"the engine answered {status}: {message}")


def _upstream_error(status: int, content: bytes, path: str) -> Response:
    """An engine's error answer, same status, in the envelope of the route's API family."""
    family = family_for(path)
    body = normalize_upstream_error(status, content) if family is OPENAI else family.body(engine_error(status, content))
    return Response(json.dumps(body), status_code=status, media_type="application/json")


class SSEPassthrough(SSEResponse):
    """Streams upstream SSE bytes as they come; races the client's disconnect against the upstream."""

    def __init__(self, release: Callable[[], None], resp: StreamResponse, metrics: Metrics, model: str,
                 kind: StreamKind = OPENAI_STREAM, tally=None):
        super().__init__()
        self.release, self.resp, self.metrics, self.model, self.kind = release, resp, metrics, model, kind
        self.tally = tally  # a rewriting one (kserve/streams.py); None: the bytes pass as they are
        self.done = lambda: None  # the route's bookkeeping, ended with the stream
        self.dispatch = None      # told the tokens and TTFT, when the route gives it

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await until_done_or_disconnected(self._pump(send, direct_body(scope)), receive)
        finally:
            await self.resp.aclose()  # closing the connection makes llama-server free the slot
            self.release()
            self.done()

    async def _pump(self, send: Send, direct: DirectBody | None = None) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        tokens, ttft = await pipe_sse(self.resp, send, self.metrics, self.model, self.started, direct, self.kind,
                                      self.tally)
        if self.dispatch is not None:
            self.dispatch.tokens_out, self.dispatch.ttft = tokens, ttft


PARTIAL_MAX = 1 << 16   # the most of one unfinished event kept (an event is a few hundred bytes)


class Tally:
    """What a passed-through stream carried: token events, whether its end came (the last bytes are kept, so
    a marker split between two chunks is still seen), the time to the first byte. Streams that are rewritten
    on the way (KServe's, kserve/streams.py) bring their own object with the same four members."""
    __slots__ = ("kind", "events", "tail", "ended", "ttft", "usage", "partial")

    def __init__(self, kind: StreamKind):
        self.kind, self.events, self.tail, self.ended, self.ttft = kind, 0, b"", False, None
        self.usage: tuple[int, int] | None = None   # (prompt, completion) from llama-server's last event
        self.partial = b""   # an event the socket split: its start, until the rest comes

    def add(self, chunk: bytes) -> bytes:
        """The bytes to send the client for this chunk of the engine's stream: here, the chunk itself."""
        if not self.partial and chunk.endswith(b"\n\n"):   # the usual case: whole events, nothing copied
            whole = chunk
        else:   # the usage event split between two reads must be read whole, or its numbers come out cut
            data = self.partial + chunk
            cut = data.rfind(b"\n\n") + 2
            whole, self.partial = (data[:cut], data[cut:]) if cut >= 2 else (b"", data[-PARTIAL_MAX:])
        if b"_tokens" in whole:
            self.usage = usage_in(whole) or self.usage
        self.events += chunk.count(self.kind.token)
        seen = self.tail + chunk
        self.ended = self.ended or self.kind.ended_in(seen)
        self.tail = seen[-40:]
        return chunk

    @property
    def tokens(self) -> int:
        # A stream that ended well closes with events that carry no token (OpenAI: the finish chunk and [DONE]).
        return max(self.events - (self.kind.overhead if self.ended else 0), 0)

    def error_event(self, message: str, code: str) -> bytes:
        return self.kind.error_event(message, code)


async def pipe_sse(resp: StreamResponse, send: Send, metrics: Metrics, model: str, started: float,
                   direct: DirectBody | None = None, kind: StreamKind = OPENAI_STREAM,
                   tally=None) -> tuple[int, float | None]:
    """Pass SSE bytes through (or what `tally.add` makes of them); end with the family's error event if the
    engine fails or stops before its stream's end (OpenAI: [DONE]). Returns (tokens sent, seconds to the
    first byte).

    The fast path (measured: a third of the gateway's CPU per streamed token): with the lean upstream
    client and a direct body writer, each chunk goes from the engine's socket callback to the client's
    socket with no task switch and no ASGI layer; start and end still go through `send`."""
    tally = tally or Tally(kind)
    first = [True]
    kept = capturing.get()   # request capture (capture.py): what goes straight to the socket is kept too

    def seen() -> None:
        if first[0]:
            first[0] = False
            tally.ttft = time.perf_counter() - started
            metrics.ttft.labels(model).observe(tally.ttft)
    try:
        if direct is not None and direct.usable:
            def sink(chunk: bytes):
                if first[0]:
                    seen()
                out = tally.add(chunk)
                direct.write(out)
                if kept is not None:
                    kept.append(out)
                return direct.drain() if direct.paused else None
            await resp.relay(sink)
        else:
            async for chunk in resp.aiter_raw():
                seen()
                out = tally.add(chunk)
                if out:
                    await send({"type": "http.response.body", "body": out, "more_body": True})
        final = b"" if tally.ended else tally.error_event(
            f"the engine's stream ended before {kind.end_name} (truncated)", "stream_truncated")
    except RETRYABLE + (httpx.ReadTimeout,) as exc:
        final = tally.error_event(f"the engine failed mid-stream ({type(exc).__name__})", "upstream_error")
    tokens = tally.tokens
    metrics.tokens.labels(model).inc(tokens)
    report(*(tally.usage or (0, tokens)))   # the key's token count (quota.py); a cut stream counts what it sent
    await send({"type": "http.response.body", "body": final, "more_body": False})
    return tokens, tally.ttft


class LoadingSSE(SSEResponse):
    """A stream whose model is not loaded yet: headers now, keep-alive comments while it loads
    (so proxies and clients do not time out), then the engine's stream."""

    KEEPALIVE_EVERY = 2.0

    def __init__(self, load, forwarder: "Forwarder", runner: ModelRunner, path: str, body: bytes, done,
                 kind: StreamKind = OPENAI_STREAM):
        super().__init__()
        self.load, self.forwarder, self.runner, self.path, self.body, self.done = load, forwarder, runner, path, body, done
        self.kind = kind

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await until_done_or_disconnected(self._run(send), receive)
        finally:
            self.done()

    async def _run(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        loading = asyncio.ensure_future(self.load())
        while not loading.done():
            await send({"type": "http.response.body", "body": f": loading {self.runner.name}\n\n".encode(),
                        "more_body": True})
            await asyncio.wait({loading}, timeout=self.KEEPALIVE_EVERY)
        try:
            loading.result()
            up, resp = await self.forwarder.open(self.runner, self.path, self.body, streamed=True)
        except APIError as exc:
            await send({"type": "http.response.body", "body": self.kind.error_event(exc.message, exc.code),
                        "more_body": False})
            return
        except Exception:  # a bug: the headers are out, so say it in the stream and log the traceback
            log.exception("loading %s for a stream failed", self.runner.name)
            await send({"type": "http.response.body", "body": self.kind.error_event("internal error in the gateway",
                                                                                    "internal_error"), "more_body": False})
            return
        try:
            if resp.status_code >= 400:
                err = normalize_upstream_error(resp.status_code, await resp.aread())["error"]
                await send({"type": "http.response.body", "body": self.kind.error_event(err["message"], err["code"]),
                            "more_body": False})
                return
            await pipe_sse(resp, send, self.forwarder.metrics, self.runner.name, self.started, kind=self.kind)
        finally:
            await resp.aclose()
            self.forwarder.release(self.runner, up)
