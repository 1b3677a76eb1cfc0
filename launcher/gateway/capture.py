"""Request capture (`gateway.capture`, off unless configured): the last requests with their bodies, answers
(streams assembled), status, timing, key name and model, for a look when something goes wrong.

A ring bounded by count and bytes; `Authorization`, `X-Api-Key` and the configured body fields are redacted
before anything is kept. An ASGI layer sees the request body and the answers sent through ASGI; the streaming
fast path (proxy.pipe_sse) adds what it writes straight to the socket through `capturing`.
"""
from __future__ import annotations

import contextvars
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Receive, Scope, Send

from .keys import current

REDACTED = "[redacted]"
SECRET_HEADERS = {"authorization", "x-api-key", "proxy-authorization", "cookie"}
SKIPPED = ("/api/", "/logs", "/metrics", "/health", "/ready", "/ui", "/register", "/registry", "/route")
# What the streaming fast path writes for the request being captured (None: not capturing).
capturing: contextvars.ContextVar[list | None] = contextvars.ContextVar("launcher_capture", default=None)


@dataclass
class Captured:
    id: int
    at: float
    method: str
    path: str
    headers: dict
    request: object            # the body: JSON (redacted) or text
    key: str = ""
    model: str | None = None
    status: int = 0
    duration_ms: float = 0.0
    answer: str = ""
    size: int = 0
    chunks: list = field(default_factory=list, repr=False)

    def summary(self) -> dict:
        return {"id": self.id, "at": self.at, "method": self.method, "path": self.path, "key": self.key,
                "model": self.model, "status": self.status, "duration_ms": self.duration_ms, "bytes": self.size}

    def whole(self) -> dict:
        return self.summary() | {"headers": self.headers, "request": self.request, "answer": self.answer}


class Capture:
    def __init__(self, requests: int = 100, max_bytes: int = 8 << 20, redact: tuple[str, ...] = ()):
        self.max_requests, self.max_bytes, self.redact = requests, max_bytes, {r.casefold() for r in redact}
        self.ring: deque[Captured] = deque()
        self.bytes = 0
        self._ids = itertools.count(1)

    def begin(self, scope: Scope, body: bytes) -> Captured:
        headers = {k.decode("latin-1"): (REDACTED if k.decode("latin-1").casefold() in SECRET_HEADERS
                                         else v.decode("latin-1")) for k, v in scope["headers"]}
        try:
            request: object = self._redacted(json.loads(body)) if body else None
        except ValueError:
            request = body[: self.max_bytes // 4].decode("utf-8", errors="replace")
        model = request.get("model") if isinstance(request, dict) else None
        path = scope["path"]
        if model is None and path.startswith("/v2/models/"):
            model = path.split("/")[3]
        return Captured(next(self._ids), time.time(), scope["method"], path, headers, request, model=model)

    def end(self, rec: Captured, status: int, started: float) -> None:
        rec.status, rec.duration_ms = status, round((time.perf_counter() - started) * 1000, 1)
        rec.key = current.get().name
        answer = b"".join(rec.chunks)
        rec.chunks = []
        rec.answer = answer[: self.max_bytes // 2].decode("utf-8", errors="replace")
        rec.size = len(rec.answer) + len(json.dumps(rec.request, default=str))
        self.ring.append(rec)
        self.bytes += rec.size
        while self.ring and (len(self.ring) > self.max_requests or self.bytes > self.max_bytes):
            self.bytes -= self.ring.popleft().size

    def find(self, request_id: int) -> Captured | None:
        return next((r for r in self.ring if r.id == request_id), None)

    def _redacted(self, value):
        if isinstance(value, dict):
            return {k: REDACTED if k.casefold() in self.redact else self._redacted(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._redacted(v) for v in value]
        return value


class CaptureLayer:
    """The ASGI side: the request body in, every answer byte out (ASGI or fast path), then one record."""

    def __init__(self, app: ASGIApp, holder):
        self.app, self.holder = app, holder   # holder.capture: a Capture, or None (off; a reload may change it)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        capture = self.holder.capture
        if capture is None or scope["type"] != "http" or scope["method"] != "POST" or \
                scope["path"].startswith(SKIPPED):
            return await self.app(scope, receive, send)
        parts: list[bytes] = []
        rec: Captured | None = None
        status = [0]
        started = time.perf_counter()

        async def send_and_keep(message):
            nonlocal rec
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body" and rec is not None:
                rec.chunks.append(message.get("body", b""))
            await send(message)

        # The body is read up front (a request's body is small next to its answer), so the record exists before
        # the answer starts; the app reads it again from here.
        while True:
            message = await receive()
            if message["type"] == "http.request":
                parts.append(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        body = b"".join(parts)
        rec = capture.begin(scope, body)
        capturing.set(rec.chunks)
        replayed = [False]

        async def replay():
            if not replayed[0]:
                replayed[0] = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()
        try:
            await self.app(scope, replay, send_and_keep)
        finally:
            capture.end(rec, status[0] or 500, started)
