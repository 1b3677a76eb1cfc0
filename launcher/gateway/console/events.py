"""`GET /api/events`: what the console shows, as one server-sent event stream.

    event: snapshot   on connect: every model and worker, the recent requests, the devices
    event: models     every 2 s and on each state change: every model and worker (states, engines, in-flight, the
                      last 3 minutes of tokens/s and queue depth)
    event: model      a deployment event (added, state, restarted, failed, removed) as it happens
    event: request    a request answered (model, protocol, endpoint, status, duration, tokens, TTFT)
    event: log        a line printed by an engine, a worker or launcher
    event: config     a reload of the config file: applied, or refused with its problems
"""
from __future__ import annotations

import asyncio
import contextlib
import json
from typing import AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from ...supervise.events import Event, EventKind
from .. import api_docs as docs
from ..deps import GatewayState, require_key, state
from ..views import target_view
from .trends import Trends

router = APIRouter(dependencies=[Depends(require_key)])
EVERY = 2.0


def summaries(st: GatewayState, trends: Trends) -> list[dict]:
    out = []
    for r in st.deployment.everything:
        v = target_view(r)
        out.append({"name": v.name, "kind": v.kind, "state": v.state, "mode": v.mode, "backend": v.backend,
                    "devices": list(v.devices), "restarts": v.restarts, "last_error": v.last_error,
                    "in_flight": v.in_flight, "queued": st.forwarder.slots.waiting(r),
                    "engines": [e.as_json() for e in v.engines], "trend": trends.of(v.name),
                    "device_bytes": st.pool.room.of(v.name)})
    return out


def sse(event: str, data) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


@router.get("/api/events", responses=docs.ok(stream=docs.CONSOLE_EVENT))
async def events(request: Request):
    st = state(request)
    telemetry, trends = request.app.state.telemetry, request.app.state.trends
    queue: asyncio.Queue = asyncio.Queue(2000)

    def on_event(event: Event) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            if event.kind == EventKind.CONFIG:
                queue.put_nowait(("config", event.data))
            else:
                queue.put_nowait(("model", {"kind": event.kind, "model": event.model, "state": event.state,
                                            "detail": event.detail, "at": event.at}))

    async def stream() -> AsyncIterator[str]:
        unsubscribe = st.deployment.events.subscribe(on_event)
        try:
            with st.activity.follow(queue, lambda r: ("request", r)), \
                    st.deployment.logs.follow(queue, lambda line: ("log", line.__dict__)):
                yield sse("snapshot", {"models": summaries(st, trends), "requests": st.activity.history(),
                                       "devices": telemetry.as_json()})
                while not st.exiting():
                    try:
                        kind, data = await asyncio.wait_for(queue.get(), EVERY)
                    except asyncio.TimeoutError:
                        yield sse("models", summaries(st, trends))
                        continue
                    yield sse(kind, data)
                    if kind == "model":
                        yield sse("models", summaries(st, trends))
        finally:
            unsubscribe()
    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

