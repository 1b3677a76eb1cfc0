"""The gateway: one FastAPI app in front of the deployment's engines.

The core (this folder's modules) handles every request alike; routes are thin and grouped by API family,
one sub-package each (openai/, kserve/, manage/, discovery/, console/), assembled here. State lives in
app.state (set by the lifespan); every error is rendered by protocols/envelopes.py.
"""
from __future__ import annotations

import socket
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Awaitable, Callable
from urllib.parse import urlsplit

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp

from ..config.model import Gateway
from ..protocols.envelopes import install_error_handlers
from ..supervise.deployment import Deployment
from ..supervise.states import ModelState
from . import api_docs as docs
from .anthropic import routes as anthropic_routes
from .api_docs import finish_openapi
from .capture import Capture, CaptureLayer
from .console import events as console_events
from .console import logs as console_logs
from .console.devices import DeviceCollector, DeviceTelemetry
from .console.trends import Trends
from .deps import GatewayState, require_key, state
from .discovery import routes as discovery_routes
from .discovery.registration import Registrar
from .drain import Drain, DrainGate
from .keys import ANONYMOUS, Keyring, load_keyring
from .kserve import rest as kserve_rest
from .kserve.grpc_http2 import GrpcServer
from .kserve.grpc_service import InferenceService
from .limits import BodyLimit
from .llama import routes as llama_routes
from .manage import routes as manage_routes
from .metrics import Metrics
from .openai import routes as openai_routes
from .pool import ModelPool
from .proxy import Forwarder
from .registry import Registry
from .routing import Router
from .scaling import Autoscaler
from .slots import SlotQueue
from .usage import UsageStore


def create_app(deployment: Deployment, gw: Gateway, *, pool: ModelPool | None = None, keys: tuple[str, ...] = (),
               keyring: Keyring | None = None, usage: UsageStore | None = None,
               manager=None, on_start: Callable[[], Awaitable[None]] | None = None,
               on_stop: Callable[[], Awaitable[None]] | None = None,
               exiting: Callable[[], bool] | None = None, grpc_on_http_port: bool = False) -> FastAPI:
    metrics = Metrics()
    metrics.follow(deployment.events)
    telemetry = DeviceTelemetry(lambda: {r.spec.devices.backend for r in deployment.everything
                                         if getattr(r.spec, "devices", None)}, gw.telemetry_interval)
    metrics.registry.register(DeviceCollector(telemetry, lambda: deployment.everything))
    pool = pool or ModelPool(deployment, gw.max_loaded, gw.load_timeout)
    drain = Drain(gw.drain_timeout)
    outer_exiting = exiting or (lambda: False)
    grpc = GrpcServer() if grpc_on_http_port or gw.grpc_port else None  # served once the state exists

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Kept-alive upstream connections save ~0.5 ms per request (launch bench overhead --fake,
        # 8-token requests). llama-server closes idle ones after 5 s, so we let go after 4 s; one it drops
        # without a word anyway is retried once by Forwarder.open (nothing was received yet).
        limits = httpx.Limits(max_keepalive_connections=64, max_connections=None, keepalive_expiry=4.0)
        timeout = httpx.Timeout(gw.request_timeout, connect=gw.connect_timeout)
        async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
            slots = SlotQueue(gw.max_queue, gw.load_timeout, gw.request_timeout, metrics)
            st = GatewayState(deployment, pool, Forwarder(client, metrics, slots), metrics,
                              keyring or Keyring((k, ANONYMOUS) for k in keys),
                              gw.admin_key_env, manager, Router(deployment, Registry()),
                              gw.replica_id or f"{socket.gethostname()}:{gw.port}", gw.public_url,
                              grpc_endpoint(gw, grpc_on_http_port), lambda: drain.draining or outer_exiting())
            st.usage = usage or UsageStore(None)
            st.usage.start()
            app.state.gw = st
            if grpc is not None:
                grpc.serve(InferenceService(st), lambda: st.keyring)
                if gw.grpc_port:
                    await grpc.listen(gw.host, gw.grpc_port)
                drain.on_begin.append(lambda grace: grpc.stop(grace))
            if on_start:
                await on_start()
            scaler = Autoscaler(lambda: deployment.workers, slots, metrics)
            scaler.start()
            app.state.trends.start(metrics)
            pool.start_ttl_loop()
            telemetry.start()
            registrar = Registrar.start(st, gw) if gw.register_with else None
            try:
                yield
            finally:
                if registrar is not None:
                    await registrar.stop()
                await scaler.close()
                await app.state.trends.close()
                await st.usage.close()   # the last counts are written
                if grpc is not None:
                    await grpc.stop(grace=5)
                await telemetry.close()
                await pool.close()
                if manager is not None:
                    await manager.close()
                if on_stop:
                    await on_stop()

    app = FastAPI(title="launcher gateway", version="0.1.0", lifespan=lifespan,
                  description="OpenAI-compatible front for llama.cpp engines")
    app.state.drain = drain
    app.state.grpc = grpc  # for the HTTP protocol the server is given (limits.http_protocol)
    app.state.telemetry = telemetry
    app.state.trends = Trends()
    app.state.capture = CaptureHolder(gw)
    app.add_middleware(CaptureLayer, holder=app.state.capture)   # inside the body limits: what it reads passed them
    app.add_middleware(BodyLimit, max_bytes=gw.max_body_bytes, timeout=gw.body_timeout)
    app.add_middleware(DrainGate, drain=drain)  # a draining gateway refuses before anything else
    app.state.cors = CorsOrigins(gw.cors_origins)
    # outermost: a browser must be able to read every answer, refusals included
    app.add_middleware(DynamicCORS, origins=app.state.cors)
    install_error_handlers(app)
    # Routes are matched in order, one by one: the generation routes go first (KServe's last cost its
    # streams 20 µs a request in route matching alone).
    app.include_router(openai_routes.router)
    app.include_router(kserve_rest.router)
    app.include_router(anthropic_routes.router)
    app.include_router(llama_routes.router)
    app.include_router(manage_routes.router)
    app.include_router(discovery_routes.router)
    app.include_router(console_logs.router)
    app.include_router(console_events.router)
    _install_operator_routes(app)

    def openapi() -> dict:  # made per call: which keys and models there are changes what it says
        st = getattr(app.state, "gw", None)
        return finish_openapi(app, bool(st and st.keys), sorted(r.name for r in st.deployment.models) if st else [])
    app.openapi = openapi
    return app


class CorsOrigins:
    """The allowed origins, which a config reload may change."""

    def __init__(self, origins):
        self.origins = tuple(origins)


class DynamicCORS:
    """Starlette's CORS for the current origins (none: not a CORS endpoint at all)."""

    def __init__(self, app: ASGIApp, origins: CorsOrigins):
        self.app, self.holder, self.built_for, self.inner = app, origins, None, app

    async def __call__(self, scope, receive, send) -> None:
        if self.built_for != self.holder.origins:
            self.built_for = self.holder.origins
            self.inner = CORSMiddleware(self.app, allow_origins=list(self.built_for), allow_methods=["*"],
                                        allow_headers=["*"]) if self.built_for else self.app
        await self.inner(scope, receive, send)


class CaptureHolder:
    """The request capture, which a config reload may turn on, off or resize."""

    def __init__(self, gw: Gateway):
        self.capture = None
        self.configure(gw)

    def configure(self, gw: Gateway) -> None:
        settings = dict(gw.capture) if gw.capture is not None else None
        if settings is None:
            self.capture = None
        else:
            kept = self.capture
            self.capture = Capture(settings.get("requests", 100), settings.get("bytes", 8 << 20),
                                   tuple(settings.get("redact", ())))
            if kept is not None:   # a resize keeps what it can
                self.capture.ring.extend(kept.ring)


def reconfigure(app: FastAPI, gw: Gateway) -> None:
    """A reloaded config's keys, CORS origins and capture, in place (reload.py)."""
    st: GatewayState = app.state.gw
    st.keyring = load_keyring(gw)
    st.admin_key_env = gw.admin_key_env
    app.state.cors.origins = tuple(gw.cors_origins)
    app.state.capture.configure(gw)


UI = Path(__file__).parent / "console" / "ui"  # the console (/ui): static files in the package, no build step, no CDN


def grpc_endpoint(gw: Gateway, on_http_port: bool) -> str | None:
    """host:port of our gRPC service as others should dial it: its own port, else the HTTP one."""
    url = urlsplit(gw.public_url)
    if gw.grpc_port:
        return f"{url.hostname or '127.0.0.1'}:{gw.grpc_port}"
    return url.netloc if on_http_port else None


def _install_operator_routes(app: FastAPI) -> None:
    @app.get("/health", responses=docs.ok({"type": "object", "required": ["status"]}))
    async def health():
        return {"status": "ok"}

    ready_schema = {"type": "object", "required": ["ready", "models"]}

    @app.get("/ready", responses=docs.ok(ready_schema) | {503: {"description": "something is not ready (yet)",
                                                               "content": {"application/json": {"schema": ready_schema}}}})
    async def ready(request: Request):
        states = {r.name: r.state for r in state(request).deployment.everything}
        # A model that is not loaded on purpose (on demand, unloaded) does not make the gateway unready.
        ok = all(s in (ModelState.READY, ModelState.STOPPED) for s in states.values())
        return JSONResponse({"ready": ok, "models": states}, status_code=200 if ok else 503)

    @app.get("/ui", include_in_schema=False)
    async def console_page():
        """The console: static files, no data in them (what it shows comes from /api/events, with the key)."""
        return FileResponse(UI / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/ui", StaticFiles(directory=UI, html=True), name="ui")  # html: /ui/ is the page too

    @app.get("/api/devices", dependencies=[Depends(require_key)], responses=docs.ok(docs.DEVICES))
    async def devices(request: Request):
        """The latest npu-smi / nvidia-smi readings per backend in use (empty without a tool)."""
        return request.app.state.telemetry.as_json()

    @app.get("/metrics", dependencies=[Depends(require_key)], responses=docs.ok(text=True))
    async def metrics(request: Request):
        return Response(generate_latest(state(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)
