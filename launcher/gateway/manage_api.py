"""`/api/v1`: the Llama Switch management API. Answers `{success, message, data, error}`; its errors
are rendered in that envelope by envelopes.py. Needs the admin key when the gateway has API keys."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ..errors import ManagementDisabled
from .deps import json_object, require_admin, state

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_admin)])


def ok(message: str, data=None) -> dict:
    return {"success": True, "message": message, "data": data, "error": None}


def manager(request: Request):
    m = state(request).manager
    if m is None:
        raise ManagementDisabled("model management is not enabled for this gateway")
    return m


@router.get("/models")
async def list_models(request: Request):
    files = manager(request).list_files()
    return ok(f"{len(files)} GGUF file(s)", files)


@router.post("/model/switch")
async def switch(request: Request):
    body, _ = await json_object(request)
    m = manager(request)
    runner = await m.switch(body.get("model_path"), body.get("config") or {})
    return ok(f"{runner.name} is {runner.state}", m.status(runner))


@router.post("/model/stop")
async def stop(request: Request):
    body = (await json_object(request))[0] if await request.body() else {}
    m = manager(request)
    runner = await m.stop(body.get("model_name"))
    return ok(f"{runner.name} stopped", m.status(runner))


@router.get("/model/status")
async def status(request: Request, model_name: str | None = None):
    m = manager(request)
    runners = [state(request).deployment.resolve(model_name)] if model_name else state(request).deployment.models
    data = [m.status(r) for r in runners]
    return ok(f"{sum(d['running'] for d in data)} of {len(data)} model(s) running",
              data[0] if model_name else data)


@router.post("/benchmark")
async def benchmark(request: Request):
    task = manager(request).start_benchmark((await json_object(request))[0])
    return JSONResponse(ok("benchmark started", task.view()), status_code=202)


@router.get("/benchmark/status")
async def benchmark_status(request: Request, task_id: str):
    task = manager(request).task(task_id)
    return ok(f"benchmark {task.state}", task.view())
