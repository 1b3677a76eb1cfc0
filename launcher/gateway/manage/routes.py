"""`/api/v1`: the Llama Switch management API (004). Every answer is `{success, message, data, error}`
with `error` "" on success; errors are rendered in that envelope by envelopes.py. Needs the admin key
when the gateway has API keys. launcher's additions (extra fields, `model_name`, the flat benchmark
body, `/benchmark/cancel`) never change what the document promises."""
from __future__ import annotations

import time
from datetime import datetime, timezone

from fastapi import APIRouter, Depends, Request

from ...errors import BadRequest, ManagementDisabled, NotFound
from .. import api_docs as docs
from ..deps import json_object, require_admin, state
from .manager import ModelManager

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_admin)])


def ok(message: str, data=None) -> dict:
    return {"success": True, "message": message, "data": data, "error": ""}


def manager(request: Request) -> ModelManager:
    m = state(request).manager
    if m is None:
        raise ManagementDisabled("model management is not enabled for this gateway")
    return m


async def optional_body(request: Request) -> dict:
    return (await json_object(request))[0] if await request.body() else {}


@router.get("/usage", responses=docs.ok(docs.envelope({"type": "array"})))
async def usage(request: Request, since: datetime | float | None = None, key: str | None = None,
                model: str | None = None):
    """Requests, prompt and completion tokens and errors per key name, model and hour (`since`: an ISO time or
    epoch seconds, default the last 24 hours)."""
    if isinstance(since, datetime):
        since = (since if since.tzinfo else since.replace(tzinfo=timezone.utc)).timestamp()
    rows = state(request).usage.rows(time.time() - 86400 if since is None else since, key, model)
    return ok(f"{len(rows)} usage rows", rows)


@router.get("/requests", responses=docs.ok(docs.envelope({"type": "array"})))
async def captured(request: Request):
    """The captured requests, newest first (gateway.capture)."""
    capture = request.app.state.capture.capture
    if capture is None:
        raise NotFound("request capture is off: set gateway.capture")
    return ok(f"{len(capture.ring)} captured requests", [r.summary() for r in reversed(capture.ring)])


@router.get("/requests/{request_id}", responses=docs.ok(docs.envelope()))
async def captured_one(request: Request, request_id: int):
    capture = request.app.state.capture.capture
    found = capture.find(request_id) if capture is not None else None
    if found is None:
        raise NotFound(f"no captured request {request_id} (capture off, or it left the ring)")
    return ok("Captured request", found.whole())


@router.get("/models", responses=docs.ok(docs.envelope({"type": "array"})))
async def list_models(request: Request):
    files = manager(request).list_files()
    return ok(f"Found {len(files)} GGUF models", files)


@router.post("/model/switch", openapi_extra=docs.body(docs.SWITCH), responses=docs.ok(docs.envelope()))
async def switch(request: Request):
    body, _ = await json_object(request)
    m = manager(request)
    runner, gateway_only = m.switch(body.get("model_path"), body.get("config") or {})
    message = "Model switch initiated"
    if gateway_only:
        given = ", ".join(f"{k} {v}" for k, v in gateway_only.items())
        message += (f" ({given}: engines listen on internal ports here; the model {runner.name!r} is served by "
                    f"this gateway at {m.gateway_url}/v1)")
    return ok(message, None)


@router.post("/model/stop", openapi_extra=docs.optional_body(docs.STOP), responses=docs.ok(docs.envelope()))
async def stop(request: Request):
    await manager(request).stop((await optional_body(request)).get("model_name"))
    return ok("Model stopped", None)


@router.post("/model/load", openapi_extra=docs.body(docs.LOAD), responses=docs.ok(docs.envelope()))
async def load(request: Request):
    """Start a configured model that is stopped (launcher's addition: the console's Load button)."""
    runner = manager(request).load((await json_object(request))[0].get("model_name"))
    return ok("Model load initiated", {"model_name": runner.name})


@router.get("/model/status", responses=docs.ok(docs.envelope()))
async def status(request: Request, model_name: str | None = None):
    m = manager(request)
    if model_name:
        return ok("Model status retrieved", await m.status(state(request).deployment.resolve(model_name)))
    return ok("Model status retrieved", [await m.status(r) for r in state(request).deployment.models])


@router.post("/benchmark", openapi_extra=docs.body(docs.BENCHMARK), responses=docs.ok(docs.envelope()))
async def benchmark(request: Request):
    task = manager(request).start_benchmark((await json_object(request))[0])
    return ok("Benchmark started", task.view())


@router.get("/benchmark/status", responses=docs.ok(docs.envelope()))
async def benchmark_status(request: Request, task_id: str):
    task = manager(request).task(task_id)
    return ok(f"Benchmark {task.state}", task.view())


@router.post("/benchmark/cancel", openapi_extra=docs.body(docs.CANCEL), responses=docs.ok(docs.envelope()))
async def benchmark_cancel(request: Request):
    task_id = (await optional_body(request)).get("task_id")
    task_id = request.query_params.get("task_id") if task_id is None else task_id
    if not isinstance(task_id, str):
        raise BadRequest("task_id is required", param="task_id")
    task = await manager(request).cancel(task_id)
    return ok(f"Benchmark {task.state}", task.view())
