"""The OpenAI-compatible gateway. Routes are thin; state lives in app.state (set by the lifespan)."""
from __future__ import annotations

import json
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Awaitable, Callable

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..config.model import Gateway
from ..supervise.runner import ModelRunner
from .auth import key_ok, presented_key
from .errors import APIError, BadRequest, Unauthorized, envelope, render
from .metrics import Metrics
from .pool import ModelPool
from .proxy import Forwarder, LoadingSSE
from .registry import Registry

log = logging.getLogger("launcher.gateway")


@dataclass
class GatewayState:
    registry: Registry
    forwarder: Forwarder
    metrics: Metrics
    keys: tuple[str, ...]
    defaults: dict[str, dict]   # model name -> request fields to add when absent
    pool: ModelPool


def create_app(runners: list[ModelRunner], gw: Gateway, keys: tuple[str, ...] = (),
               on_start: Callable[[], Awaitable[None]] | None = None,
               on_stop: Callable[[], Awaitable[None]] | None = None, pool: ModelPool | None = None,
               manager=None) -> FastAPI:
    metrics = Metrics()
    pool = pool or ModelPool(runners, gw.max_loaded, gw.load_timeout)

    def hook(runner: ModelRunner) -> None:
        runner.on_restart = lambda name: metrics.restarts.labels(name).inc()
    for r in runners:
        hook(r)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Kept-alive upstream connections save ~0.5 ms per request (launch bench overhead --fake,
        # 8-token requests). llama-server closes idle ones after 5 s, so we let go after 4 s; one it drops
        # without a word anyway is retried once by Forwarder.open (nothing was received yet).
        limits = httpx.Limits(max_keepalive_connections=64, max_connections=None, keepalive_expiry=4.0)
        timeout = httpx.Timeout(gw.request_timeout, connect=gw.connect_timeout)
        async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
            app.state.gw = GatewayState(Registry(runners), Forwarder(client, metrics, gw.max_queue), metrics, keys,
                                        {r.name: r.spec.defaults.as_request_fields() for r in runners}, pool)
            app.state.gw.registry.on_add = hook
            app.state.manager = manager
            app.state.admin_key_env = gw.admin_key_env
            if on_start:
                await on_start()
            pool.start_ttl_loop()
            try:
                yield
            finally:
                await pool.close()
                if on_stop:
                    await on_stop()

    app = FastAPI(title="launcher gateway", version="0.1.0", lifespan=lifespan,
                  description="OpenAI-compatible front for llama.cpp engines")
    if gw.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(gw.cors_origins), allow_methods=["*"],
                           allow_headers=["*"])
    _install_error_handlers(app)
    _install_routes(app)
    from .manage_api import router
    app.include_router(router)
    return app


def state(request: Request) -> GatewayState:
    return request.app.state.gw


def require_key(request: Request) -> None:
    keys = state(request).keys
    if keys and not key_ok(presented_key(request.headers), keys):
        raise Unauthorized("missing or wrong API key: send `Authorization: Bearer <key>` or `X-Api-Key`")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError):
        if request.url.path.startswith("/api/v1"):
            from .manage_api import failure
            return failure(exc)
        return render(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return render(BadRequest(str(exc.errors()[0].get("msg", "invalid request"))))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(envelope(str(exc.detail), "invalid_request_error", code), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse(envelope("internal error in the gateway", "server_error", "internal_error"),
                            status_code=500)


async def _json_body(request: Request) -> tuple[dict, bytes]:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body, raw


async def _forward(request: Request, path: str, endpoint: str) -> Response:
    st = state(request)
    body, raw = await _json_body(request)
    runner = st.registry.resolve(body.get("model"))
    missing = {} if endpoint == "embeddings" else \
        {k: v for k, v in st.defaults.get(runner.name, {}).items() if k not in body}
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


def _install_routes(app: FastAPI) -> None:
    auth = [Depends(require_key)]

    @app.post("/v1/chat/completions", dependencies=auth)
    async def chat(request: Request):
        return await _forward(request, "/v1/chat/completions", "chat")

    @app.post("/v1/completions", dependencies=auth)
    async def completions(request: Request):
        return await _forward(request, "/v1/completions", "completions")

    @app.post("/v1/embeddings", dependencies=auth)
    async def embeddings(request: Request):
        return await _forward(request, "/v1/embeddings", "embeddings")

    @app.get("/v1/models", dependencies=auth)
    async def models(request: Request):
        data = []
        for r in state(request).registry.runners:
            data.append({"id": r.name, "object": "model", "created": int(r.started_at or 0), "owned_by": "launcher",
                         "aliases": list(r.plan.aliases), "state": r.state, "restarts": r.restarts,
                         "engines": [{"url": u.url, "state": u.process.state, "pid": u.process.pid,
                                      "in_flight": u.in_flight, "served": u.served} for u in r.upstreams]})
        return {"object": "list", "data": data}

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/ready")
    async def ready(request: Request):
        runners = state(request).registry.runners
        states = {r.name: r.state for r in runners}
        # A model that is not loaded on purpose (on demand, unloaded) does not make the gateway unready.
        ok = all(s in ("ready", "stopped") for s in states.values())
        return JSONResponse({"ready": ok, "models": states}, status_code=200 if ok else 503)

    @app.get("/metrics", dependencies=auth)
    async def metrics(request: Request):
        st = state(request)
        for r in st.registry.runners:
            st.metrics.ready.labels(r.name).set(1 if any(u.ready for u in r.upstreams) else 0)
        return Response(generate_latest(st.metrics.registry), media_type=CONTENT_TYPE_LATEST)
