"""A worker process: one user App served as KServe v2 over HTTP to the gateway, on an internal port.

    GET  /health                        200 once the app is loaded, with its capabilities
    POST /v2/models/{name}/infer        the handler whose capability matches X-Capability-Query
    POST /v2/models/{name}/infer_stream SSE, one {error_message, infer_response} event per response sent

Handlers are plain functions run in a thread pool. A handler that raises gives that request a KServe
error (500); the worker goes on serving. A client that goes away closes the stream, and the handler's
next `stream.send` raises, which ends it.
"""
from __future__ import annotations

import asyncio
import json
import logging
import queue
from concurrent.futures import ThreadPoolExecutor

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ..errors import APIError, BadRequest, NotFound
from ..protocols.envelopes import install_error_handlers
from ..protocols.kserve.rest_body import read_request
from ..protocols.kserve.tensors import rest_inputs
from ..protocols.sse import EventStream
from .app import App, Context, Handler, Stream
from .client import gateway_call
from .messages import as_response, request_from_tensors, response_to_rest

log = logging.getLogger("launcher.worker")
QUERY_HEADER = "x-capability-query"  # the gateway's resolved capability query, as JSON


class HandlerFailed(APIError):
    status, type, code = 500, "server_error", "handler_error"


def create_worker_app(app: App, name: str, call, threads: int = 4) -> FastAPI:
    executor = ThreadPoolExecutor(threads, thread_name_prefix="handler")
    web = FastAPI(title=f"launcher worker {name}", openapi_url=None)
    install_error_handlers(web)

    def pick(request: Request, model: str, stream: bool) -> Handler:
        query = json.loads(request.headers.get(QUERY_HEADER) or "null") or {"type": model}
        handler = app.find(query, stream)
        if handler is None:
            raise NotFound(f"no handler of worker {name!r} serves {query}; it serves {app.capabilities()}")
        return handler

    async def decode(request: Request, model: str):
        body, binary = await read_request(request)
        tensors, form = rest_inputs(body, binary) if body.get("inputs") else ([], "data")
        return request_from_tensors(model, body, tensors), "contents" if form == "contents" else "data"

    def run(handler: Handler, *args):
        try:
            return handler.func(*args)
        except Exception as exc:  # the request fails, never the worker
            log.exception("handler %s failed", handler.func.__name__)
            raise HandlerFailed(f"handler {handler.func.__name__} raised {type(exc).__name__}: {exc}") from exc

    @web.get("/health")
    async def health():
        return {"status": "ok", "name": name, "capabilities": app.capabilities()}

    @web.post("/v2/models/{model}/infer")
    async def infer(request: Request, model: str):
        handler = pick(request, model, stream=False)
        if handler.stream:
            raise BadRequest(f"capability {handler.capability} streams: call infer_stream")
        req, form = await decode(request, model)
        args = (req, Context(call, handler.capability)) if handler.takes_context else (req,)
        result = await asyncio.get_running_loop().run_in_executor(executor, run, handler, *args)
        try:
            response = as_response(result, req)
        except TypeError as exc:
            raise HandlerFailed(str(exc)) from exc
        answer, blob = response_to_rest(response, form, *_asked_outputs(req))
        if not blob:
            return JSONResponse(answer)
        head = json.dumps(answer, separators=(",", ":")).encode()
        return Response(head + blob, media_type="application/octet-stream",
                        headers={"Inference-Header-Content-Length": str(len(head))})

    @web.post("/v2/models/{model}/infer_stream")
    async def infer_stream(request: Request, model: str):
        handler = pick(request, model, stream=True)
        req, form = await decode(request, model)
        stream = Stream()
        context = Context(call, handler.capability)

        def produce():
            try:
                if handler.stream:
                    run(handler, *((req, context, stream) if handler.takes_context else (req, stream)))
                else:  # a plain handler streams its one answer
                    stream.send(as_response(run(handler, *((req, context) if handler.takes_context else (req,))),
                                            req))
            except APIError as exc:
                stream.error(exc.message)
            except (TypeError, RuntimeError) as exc:
                stream.error(str(exc))
            finally:
                stream.close()

        loop = asyncio.get_running_loop()
        loop.run_in_executor(executor, produce)

        async def events():
            while (item := await loop.run_in_executor(None, _next, stream)) is not None:
                inner = response_to_rest(item.infer_response, form)[0] if item.infer_response else None
                yield b"data: " + json.dumps({"error_message": item.error_message,
                                              "infer_response": inner}).encode() + b"\n\n"

        async def close():
            stream.close()  # a client gone: the handler's next send raises, and it ends in its thread
        return EventStream(events(), close)

    web.state.executor = executor
    return web


def serve_app(app: App, port: int = 8000, host: str = "127.0.0.1", threads: int = 4) -> None:
    """Serve one App alone, KServe v2 over REST on `port` (blocks). Under launch (`launch run module:app`,
    or a config's `workers:`) it gets gRPC, keys, metrics, restarts and `context.call`."""
    uvicorn.run(create_worker_app(app, "app", gateway_call, threads), host=host, port=port, log_level="info")


def _asked_outputs(request) -> tuple[dict | None, bool]:
    """(output name -> binary?) for the outputs the request lists (None: all), and binary_data_output."""
    binary_all = bool(request.parameters.get("binary_data_output"))
    if not request.outputs:
        return None, binary_all
    return {o.get("name"): bool((o.get("parameters") or {}).get("binary_data", binary_all))
            for o in request.outputs if isinstance(o, dict)}, binary_all


def _next(stream: Stream):
    while True:
        try:
            return stream.get(timeout=1.0)
        except queue.Empty:
            continue
