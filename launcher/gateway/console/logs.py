"""Logs over HTTP, as llama-swap serves them: the recent history, and a live stream (history first).

    GET /logs[?model=NAME]             recent lines of every process and of launcher (or of one model), as text
    GET /logs/stream[/{model}]         the same, then every new line as it is printed (chunked text);
                                       `?no-history` starts with the next line
"""
from __future__ import annotations

import asyncio
from typing import AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, StreamingResponse

from ...errors import NotFound
from .. import api_docs as docs
from ..deps import require_key, state

router = APIRouter(dependencies=[Depends(require_key)])
TEXT = "text/plain; charset=utf-8"


@router.get("/logs", response_class=PlainTextResponse, responses=docs.ok(text=True))
async def logs(request: Request, model: str | None = None):
    """`?model=NAME`: that model's or worker's lines only."""
    hub = state(request).deployment.logs
    return PlainTextResponse("".join(line.format() + "\n" for line in hub.history(model)))


@router.get("/logs/stream", responses=docs.ok(text=True))
async def stream_all(request: Request):
    return _stream(request, None)


@router.get("/logs/stream/{model}", responses=docs.ok(text=True))
async def stream_model(request: Request, model: str):
    st = state(request)
    if not any(r.name == model for r in st.deployment.everything):
        raise NotFound(f"no model or worker {model!r}")
    return _stream(request, model)


def _stream(request: Request, model: str | None) -> StreamingResponse:
    st = state(request)
    hub = st.deployment.logs
    history = "no-history" not in request.query_params

    async def lines() -> AsyncIterator[str]:
        with hub.follow() as live:
            seen = 0
            if history:
                for line in hub.history(model):
                    seen = line.seq
                    yield line.format() + "\n"
            while not st.exiting():
                try:
                    line = await asyncio.wait_for(live.get(), 1.0)
                except asyncio.TimeoutError:
                    continue  # look at `exiting` now and then: a stream must not hold up shutdown
                if line.seq > seen and (model is None or line.model == model):
                    yield line.format() + "\n"
    return StreamingResponse(lines(), media_type=TEXT, headers={"X-Accel-Buffering": "no", "Cache-Control": "no-cache"})
