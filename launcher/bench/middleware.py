"""What the gateway's protective layers cost per request, in process, with nothing else on the clock:

    launch bench middleware        # CPU µs per request and per chunk: DrainGate, BodyLimit, CORS, retry hook

Each layer wraps a do-nothing ASGI app that reads a 1 KiB body and answers with no chunk, then with 64;
the figures are the CPU time with the layer minus without it (median of interleaved rounds), per request
and per streamed chunk. launcher's own layers do not wrap `send`, so a chunk costs them nothing;
Starlette's CORS does. The OpenAPI documentation of request bodies costs nothing at run time (it is
`openapi_extra`: nothing validates against it).
"""
from __future__ import annotations

import asyncio
import json
import statistics
import time

from starlette.middleware.cors import CORSMiddleware

from ..gateway.drain import Drain, DrainGate
from ..gateway.limits import BodyLimit
from ..gateway.proxy import Fresh

BODY = b"x" * 1024
CHUNKS = 64


def answering(chunks: int):
    async def app(scope, receive, send) -> None:
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for _ in range(chunks):
            await send({"type": "http.response.body", "body": b"data: {}\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    return app


LAYERS = {
    "DrainGate (drain on SIGTERM)": lambda app: DrainGate(app, Drain(30)),
    "BodyLimit (max_body_bytes, body_timeout)": lambda app: BodyLimit(app, 32 << 20, 30),
    "CORS (when cors_origins is set)": lambda app: CORSMiddleware(app, allow_origins=["https://app.example"],
                                                                   allow_methods=["*"], allow_headers=["*"]),
}
SCOPE = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "query_string": b"",
         "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode()),
                     (b"origin", b"https://app.example")]}


async def _requests(app, n: int) -> float:
    async def receive() -> dict:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message) -> None:
        pass
    started = time.process_time()
    for _ in range(n):
        await app(dict(SCOPE), receive, send)
    return (time.process_time() - started) / n


async def _trace_hook(n: int) -> float:
    """httpcore calls the hook on every step of a request (about 12 on a kept-alive connection)."""
    started = time.process_time()
    for _ in range(n):
        fresh = Fresh()
        for event in ("connection.send_request_headers.started", "connection.send_request_headers.complete",
                      "connection.send_request_body.started", "connection.send_request_body.complete",
                      "connection.receive_response_headers.started", "connection.receive_response_headers.complete",
                      "connection.receive_response_body.started", "connection.receive_response_body.complete",
                      "connection.response_closed.started", "connection.response_closed.complete",
                      "http11.send_request_headers.started", "http11.send_request_headers.complete"):
            await fresh(event, {})
    return (time.process_time() - started) / n


def main(args) -> int:
    hook = "retry trace hook (Forwarder.open)"
    per_request: dict[str, list[float]] = {name: [] for name in [*LAYERS, hook]}
    per_chunk: dict[str, list[float]] = {name: [] for name in [*LAYERS, hook]}
    for _ in range(args.rounds):
        bare = {n: asyncio.run(_requests(answering(n), args.requests)) for n in (0, CHUNKS)}
        for name, wrap in LAYERS.items():
            cost = {n: asyncio.run(_requests(wrap(answering(n)), args.requests)) - bare[n] for n in (0, CHUNKS)}
            per_request[name].append(cost[0])
            per_chunk[name].append((cost[CHUNKS] - cost[0]) / CHUNKS)
        per_request[hook].append(asyncio.run(_trace_hook(args.requests)))
        per_chunk[hook].append(0.0)  # it runs once per request, not per chunk
    report = {name: {"per_request_us": round(statistics.median(per_request[name]) * 1e6, 1),
                     "per_chunk_us": round(max(0.0, statistics.median(per_chunk[name])) * 1e6, 2)}
              for name in per_request}
    for name, r in report.items():
        print(f"{name:<44} {r['per_request_us']:>6.1f} µs per request  {r['per_chunk_us']:>5.2f} µs per chunk",
              flush=True)
    if args.json:
        print(json.dumps(report, indent=1))
    return 0


def register(sub) -> None:
    p = sub.add_parser("middleware", help="CPU cost per request of the gateway's protective layers, in process")
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=main)

