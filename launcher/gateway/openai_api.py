"""`/v1`: the OpenAI-compatible routes. Thin: each resolves the model and hands the bytes to the proxy."""
from __future__ import annotations

import json
import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ..errors import APIError
from ..supervise.runner import ModelRunner
from .deps import GatewayState, json_object, require_key, state
from .proxy import LoadingSSE

router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])


@router.post("/chat/completions")
async def chat(request: Request):
    return await forward(request, "/v1/chat/completions", "chat")


@router.post("/completions")
async def completions(request: Request):
    return await forward(request, "/v1/completions", "completions")


@router.post("/embeddings")
async def embeddings(request: Request):
    return await forward(request, "/v1/embeddings", "embeddings")


@router.get("/models")
async def models(request: Request):
    data = []
    for r in state(request).deployment.models:
        data.append({"id": r.name, "object": "model", "created": int(r.started_at or 0), "owned_by": "launcher",
                     "aliases": list(r.plan.aliases), "state": r.state, "restarts": r.restarts,
                     "engines": [{"url": u.url, "state": u.process.state, "pid": u.process.pid,
                                  "in_flight": u.in_flight, "served": u.served} for u in r.upstreams]})
    return {"object": "list", "data": data}


async def forward(request: Request, path: str, endpoint: str) -> Response:
    st = state(request)
    body, raw = await json_object(request)
    runner = st.deployment.resolve(body.get("model"))
    st.pool.admit(runner)
    missing = {} if endpoint == "embeddings" else {k: v for k, v in runner.request_defaults.items() if k not in body}
    body.update(missing)
    stream = body.get("stream") is True
    payload = json.dumps(body).encode() if missing else raw
    labels = (runner.name, endpoint)
    st.metrics.in_flight.labels(runner.name).inc()
    started, status = time.perf_counter(), 500
    runner.pending += 1  # pinned: the pool must not evict it before the request reaches an engine
    handed_over = False
    try:
        if st.pool.needs_load(runner):
            if stream:  # answer now, keep the stream alive while the model loads
                handed_over = True
                status = 200
                return LoadingSSE(lambda: st.pool.ensure_loaded(runner), st.forwarder, runner, path, payload,
                                  done=lambda: _release(st, runner))
            await st.pool.ensure_loaded(runner)
        st.pool.touch(runner)
        if stream:
            resp = await st.forwarder.stream(runner, path, payload)
        else:
            resp = await st.forwarder.complete(runner, path, payload, request.receive)
        status = resp.status_code
        return resp
    except APIError as exc:
        status = exc.status
        st.metrics.errors.labels(runner.name, exc.code).inc()
        raise
    finally:
        if not handed_over:
            _release(st, runner)
        st.metrics.in_flight.labels(runner.name).dec()
        st.metrics.requests.labels(*labels, str(status)).inc()
        st.metrics.latency.labels(*labels).observe(time.perf_counter() - started)


def _release(st: GatewayState, runner: ModelRunner) -> None:
    runner.pending -= 1
    st.pool.touch(runner)  # idle time counts from the end of the last request
