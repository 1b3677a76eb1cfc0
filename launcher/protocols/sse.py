"""Server-sent events, the way every front of launcher (and a worker process) answers a stream: unbuffered by
proxies, no content-length, raced against the client's disconnect so a gone client cancels the work."""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import AsyncIterator, Awaitable, Callable

from starlette.responses import Response
from starlette.types import Receive, Scope, Send


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def until_done_or_disconnected(work, receive: Receive):
    """Run `work` until it ends or the client goes away (then cancel it). Returns its result, or
    None if the client left first; re-raises its error."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_until_disconnect(receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (task, watcher):
            t.cancel()
        for t in (task, watcher):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
    if task.done() and not task.cancelled():
        return task.result()
    return None


class SSEResponse(Response):
    """An event stream: unbuffered by proxies, no content-length."""

    media_type = "text/event-stream"

    def __init__(self):
        super().__init__(status_code=200, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                         media_type=self.media_type)
        # Response.__init__ set content-length: 0 for the empty body; a stream has none.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.started = time.perf_counter()


class EventStream(SSEResponse):
    """SSE events from an async iterator of ready-made bytes, raced against the client's disconnect;
    `close` runs at the end however it ends (it closes the upstream and ends the route's bookkeeping)."""

    def __init__(self, events: AsyncIterator[bytes], close: Callable[[], Awaitable[None]]):
        super().__init__()
        self.events, self.close = events, close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await until_done_or_disconnected(self._pump(send), receive)
        finally:
            await self.close()

    async def _pump(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        async for event in self.events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class StreamKind:
    """How one API family's event stream ends, what marks a generated token in it, and how it says an error
    after its headers went out. The gateway passes the engine's bytes through and looks only at these."""

    def __init__(self, name: str, end: bytes | tuple[bytes, ...], token: bytes, overhead: int,
                 error_event: Callable[[str, str], bytes], end_name: str):
        self.name, self.token, self.overhead, self.error_event = name, token, overhead, error_event
        self.ends = end if isinstance(end, tuple) else (end,)  # any of these in the last event ends the stream
        self.end_name = end_name  # how an error message names the end

    def ended_in(self, data: bytes) -> bool:
        return any(end in data for end in self.ends)


def _openai_error(message: str, code: str) -> bytes:
    """An error after SSE headers went out: an error event, then [DONE] (as vLLM does)."""
    body = {"error": {"message": message, "type": "server_error", "param": None, "code": code}}
    return b"data: " + json.dumps(body).encode() + b"\n\ndata: [DONE]\n\n"


def _anthropic_error(message: str, code: str) -> bytes:
    body = {"type": "error", "error": {"type": "api_error", "message": message}}
    return b"event: error\ndata: " + json.dumps(body).encode() + b"\n\n"


def _responses_error(message: str, code: str) -> bytes:
    body = {"type": "error", "code": code, "message": message, "param": None}
    return b"event: error\ndata: " + json.dumps(body).encode() + b"\n\n"


def _llama_error(message: str, code: str) -> bytes:
    body = {"error": {"message": message, "type": "server_error", "code": code}}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


# OpenAI: one `data:` per token, then the finish chunk and [DONE]. Anthropic: message_start ... message_stop,
# a content_block_delta per token. Responses: response.created ... response.completed, an output_text.delta
# per token. llama-server's /completion: a `data:` per token, the last one with "stop": true.
OPENAI_STREAM = StreamKind("openai", b"data: [DONE]", b"data: ", 2, _openai_error, "[DONE]")
ANTHROPIC_STREAM = StreamKind("anthropic", b'"message_stop"', b"event: content_block_delta", 0, _anthropic_error,
                              "message_stop")
RESPONSES_STREAM = StreamKind("responses", b'"response.completed"', b"event: response.output_text.delta", 0,
                              _responses_error, "response.completed")
LLAMA_STREAM = StreamKind("llama", (b'"stop":true', b'"stop": true'), b"data: ", 1, _llama_error, "its last chunk")
