"""`/api/v1`: the Llama Switch management API. Answers `{success, message, data, error}`.

When the gateway has API keys, this API needs the admin key (gateway.admin_key_env) instead.
"""
from __future__ import annotations

import os

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from .auth import key_ok, presented_key
from .errors import APIError, BadRequest, Unauthorized

router = APIRouter(prefix="/api/v1")


class ManagementDisabled(APIError):
    status, type, code = 403, "permission_error", "management_disabled"


def require_admin(request: Request) -> None:
    gw = request.app.state.gw
    if not gw.keys:
        return  # no keys at all: a local, open setup
    admin_env = request.app.state.admin_key_env
    admin = os.environ.get(admin_env, "") if admin_env else ""
    if not admin:
        raise ManagementDisabled("the gateway has API keys but no admin key: set gateway.admin_key_env")
    if not key_ok(presented_key(request.headers), (admin,)):
        raise Unauthorized("the management API needs the admin key")


def ok(message: str, data=None) -> dict:
    return {"success": True, "message": message, "data": data, "error": None}


def failure(exc: APIError) -> JSONResponse:
    return JSONResponse({"success": False, "message": exc.message, "data": None,
                         "error": {"type": exc.type, "code": exc.code, "param": exc.param}},
                        status_code=exc.status, headers=exc.headers)


def manager(request: Request):
    m = request.app.state.manager
    if m is None:
        raise ManagementDisabled("model management is not enabled for this gateway")
    return m


async def _body(request: Request) -> dict:
    try:
        body = await request.json()
    except ValueError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


@router.get("/models", dependencies=[Depends(require_admin)])
async def list_models(request: Request):
    files = manager(request).list_files()
    return ok(f"{len(files)} GGUF file(s)", files)


@router.post("/model/switch", dependencies=[Depends(require_admin)])
async def switch(request: Request):
    body = await _body(request)
    gw = request.app.state.gw
    runner = await manager(request).switch(body.get("model_path"), body.get("config") or {}, gw.registry, gw.pool)
    return ok(f"{runner.name} is {runner.state}", manager(request).status(runner, gw.pool))


@router.post("/model/stop", dependencies=[Depends(require_admin)])
async def stop(request: Request):
    body = await _body(request) if await request.body() else {}
    gw = request.app.state.gw
    runner = await manager(request).stop(body.get("model_name"), gw.registry)
    return ok(f"{runner.name} stopped", manager(request).status(runner, gw.pool))


@router.get("/model/status", dependencies=[Depends(require_admin)])
async def status(request: Request, model_name: str | None = None):
    gw = request.app.state.gw
    m = manager(request)
    runners = [gw.registry.resolve(model_name)] if model_name else gw.registry.runners
    data = [m.status(r, gw.pool) for r in runners]
    return ok(f"{sum(d['running'] for d in data)} of {len(data)} model(s) running",
              data[0] if model_name else data)


@router.post("/benchmark", dependencies=[Depends(require_admin)])
async def benchmark(request: Request):
    gw = request.app.state.gw
    task = manager(request).start_benchmark(await _body(request), gw.registry)
    return JSONResponse(ok("benchmark started", task.view()), status_code=202)


@router.get("/benchmark/status", dependencies=[Depends(require_admin)])
async def benchmark_status(request: Request, task_id: str):
    task = manager(request).task(task_id)
    return ok(f"benchmark {task.state}", task.view())
