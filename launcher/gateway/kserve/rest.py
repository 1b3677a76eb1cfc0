"""`/v2`: KServe v2 (Open Inference Protocol) over REST, with Triton's generate extension. Routes are thin:
decode (tensors.py), generate (generation.py), answer in the form the request used. Errors are KServe's
`{"error": "message"}` (envelopes.py)."""
from __future__ import annotations

import asyncio
import contextlib
import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from ...errors import BadRequest, EngineUnavailable, NotFound
from ...protocols.kserve import inputs as kserve_inputs
from ...protocols.kserve.rest_body import BINARY_HEADER, read_request
from ...protocols.kserve.tensors import rest_inputs, rest_output
from ...protocols.sse import EventStream, until_done_or_disconnected
from ...supervise.runner import ModelRunner
from ...supervise.states import ModelState
from .. import api_docs as docs
from ..deps import require_key, state
from ..dispatch import Dispatch
from ..proxy import SSEPassthrough
from ..registry import RemoteReplica
from ..routing import Route, route_kserve
from . import generation
from .metadata import model_metadata, server_metadata
from .relay import RelayError, error_message, relay, relay_headers, relay_stream
from .streams import SSERewrite, event_template

router = APIRouter(prefix="/v2")
KEY = {"dependencies": [Depends(require_key)]}
INFER_DOCS = {"openapi_extra": docs.body(docs.INFER), "responses": docs.ok(docs.INFER_ANSWER, binary=True)}
STREAM_DOCS = {"openapi_extra": docs.body(docs.INFER), "responses": docs.ok(stream=docs.KSERVE_EVENT)}
GENERATE_DOCS = {"openapi_extra": docs.body(docs.GENERATE), "responses": docs.ok(docs.GENERATE_ANSWER)}
GENERATE_STREAM_DOCS = {"openapi_extra": docs.body(docs.GENERATE), "responses": docs.ok(stream=docs.GENERATE_EVENT)}
VERSION = "1"  # launcher serves one version of each model


def route(request: Request, name: str, version: str | None, body: dict | None = None) -> Route:
    """A served model by name, else by capability (routing.py)."""
    if version not in (None, "", VERSION):
        raise NotFound(f"model {name!r} has no version {version!r} (it serves version {VERSION})")
    parameters = (body or {}).get("parameters")
    return route_kserve(state(request).router, name, parameters if isinstance(parameters, dict) else {},
                        request.headers)


async def relayed(request: Request, chosen: Route, name: str, endpoint: str) -> Response:
    """The request, as sent, to the worker or replica that serves its capability; its answer back."""
    if chosen.kind == "worker" and endpoint.startswith("generate"):
        raise BadRequest(f"{name!r} is served by Python worker {chosen.target.name!r}, which answers infer and "
                         "infer_stream only")
    st = state(request)
    raw = await request.body()
    path = f"/v2/models/{name}/{endpoint}"
    headers = relay_headers(st, chosen, request.headers)
    if endpoint.endswith("_stream"):
        stack = contextlib.AsyncExitStack()
        try:
            events = await relay_stream(st, chosen, path, raw, headers, "kserve", endpoint, stack)
        except BaseException:
            await stack.aclose()
            raise

        async def sse():
            async for event in events:
                yield b"data: " + json.dumps(event).encode() + b"\n\n"
        return EventStream(sse(), stack.aclose)
    answer = await until_done_or_disconnected(relay(st, chosen, path, raw, headers, "kserve", endpoint),
                                              request.receive)
    if answer is None:
        return Response(status_code=499)  # nobody is there to read it
    status, resp_headers, content = answer
    if status >= 400:
        raise RelayError(status, error_message(content))
    keep = {BINARY_HEADER: resp_headers[BINARY_HEADER]} if BINARY_HEADER in resp_headers else {}
    return Response(content, status, headers=keep, media_type=resp_headers.get("content-type"))


@router.get("", **KEY, responses=docs.ok(docs.OBJECT))
async def metadata(request: Request):
    return server_metadata()


@router.get("/health/live", responses=docs.ok())
async def live():
    return {"live": True}


@router.get("/health/ready", responses=docs.ok())
async def ready(request: Request):
    states = {r.name: r.state for r in state(request).deployment.everything}
    waiting = [n for n, s in states.items() if s not in (ModelState.READY, ModelState.STOPPED)]
    if waiting:
        raise EngineUnavailable(f"not ready: {', '.join(waiting)} starting or failed")
    return {"ready": True}


@router.get("/models/{name}", **KEY, responses=docs.ok(docs.MODEL_METADATA))
@router.get("/models/{name}/versions/{version}", **KEY, responses=docs.ok(docs.MODEL_METADATA))
async def model(request: Request, name: str, version: str | None = None):
    chosen = route(request, name, version)
    if chosen.kind != "model":  # a worker's tensors are its handlers' business
        return {"name": name, "versions": [VERSION], "platform": "launcher.worker", "inputs": [], "outputs": []}
    return model_metadata(chosen.target.name, VERSION)


@router.get("/models/{name}/ready", **KEY, responses=docs.ok())
@router.get("/models/{name}/versions/{version}/ready", **KEY, responses=docs.ok())
async def model_ready(request: Request, name: str, version: str | None = None):
    runner = route(request, name, version).target
    if runner.state != ModelState.READY:
        raise BadRequest(f"model {runner.name!r} is {runner.state}")
    return {"name": name if isinstance(runner, RemoteReplica) or runner.is_worker else runner.name, "ready": True}


def _requested_outputs(body: dict) -> dict[str, bool]:
    """Output name -> binary?, for the outputs the request names (all of them when it names none)."""
    binary_all = bool((body.get("parameters") or {}).get("binary_data_output"))
    asked = body.get("outputs")
    if not asked:
        return {name: binary_all for name, _ in kserve_inputs.OUTPUTS}
    out = {}
    if not isinstance(asked, list):
        raise BadRequest("`outputs` must be a list of {name, parameters}", param="outputs")
    for o in asked:
        if not isinstance(o, dict) or not isinstance(o.get("name"), str) or o["name"] not in dict(kserve_inputs.OUTPUTS):
            raise BadRequest(f"unknown output {o!r}; outputs are text_output, finish_reason", param="outputs")
        params = o.get("parameters") or {}
        if not isinstance(params, dict):
            raise BadRequest(f"output {o['name']!r}: `parameters` must be an object", param="outputs")
        out[o["name"]] = bool(params.get("binary_data", binary_all))
    return out


async def routed(request: Request, name: str, version: str | None, endpoint: str):
    """The request read and routed: (body, binary part, the served model), or, for a worker or another
    replica, the Response it answered when the request was relayed there as sent."""
    body, binary = await read_request(request)
    chosen = route(request, name, version, body)
    if chosen.kind != "model":
        return await relayed(request, chosen, name, endpoint)
    return body, binary, chosen.target


async def answered(request: Request, runner: ModelRunner, endpoint: str, work):
    """`work()` run under the request's Dispatch once the model can take it, raced against the client
    leaving: its result, or None when nobody is there to read it (counted as 499)."""
    async with Dispatch(state(request), runner, "kserve", endpoint) as dispatch:
        await dispatch.loaded()
        result = await until_done_or_disconnected(work(), request.receive)
        dispatch.status = 200 if result is not None else 499
    return result


@router.post("/models/{name}/versions/{version}/infer", **KEY, **INFER_DOCS)
@router.post("/models/{name}/infer", **KEY, **INFER_DOCS)
async def infer(request: Request, name: str, version: str | None = None):
    found = await routed(request, name, version, "infer")
    if isinstance(found, Response):
        return found
    body, binary, runner = found
    tensors, form = rest_inputs(body, binary)
    call = generation.decode_call(tensors, body.get("parameters") or {}, runner.request_defaults)
    outputs = _requested_outputs(body)
    forwarder = state(request).forwarder
    results = await answered(request, runner, "infer", lambda: asyncio.gather(
        *(generation.complete(forwarder, runner, p, call.params) for p in call.prompts)))
    if results is None:
        return Response(status_code=499)  # nobody is there to read it
    values = {"text_output": [r.text.encode() for r in results],
              "finish_reason": [r.finish_reason.encode() for r in results]}
    answer = {"model_name": runner.name, "model_version": VERSION, "outputs": [],
              "parameters": {"prompt_tokens": sum(r.prompt_tokens for r in results),
                             "completion_tokens": sum(r.completion_tokens for r in results)}}
    if "id" in body:
        answer["id"] = body["id"]
    blobs = []
    for out_name, binary_out in outputs.items():
        tensor, blob = rest_output(out_name, "BYTES", values[out_name], "binary" if binary_out else
                                   ("contents" if form == "contents" else "data"))
        answer["outputs"].append(tensor)
        blobs.append(blob)
    if not any(blobs):
        return JSONResponse(answer)
    head = json.dumps(answer, separators=(",", ":")).encode()
    return Response(head + b"".join(blobs), media_type="application/octet-stream",
                    headers={"Inference-Header-Content-Length": str(len(head))})


async def _stream_response(request: Request, runner: ModelRunner, prompt: str, params: dict, endpoint: str,
                           render, render_error) -> Response:
    """An SSE answer, one event per engine chunk, on the fast path (streams.py): `render(piece)` makes an
    event's bytes, and an engine failure after the headers becomes `render_error(message)`, never a normal end."""
    st = state(request)
    async with Dispatch(st, runner, "kserve", endpoint) as dispatch:
        await dispatch.loaded()
        up, resp = await generation.open_engine_stream(st.forwarder, runner, prompt, params)
        stream = SSEPassthrough(lambda: st.forwarder.release(runner, up), resp, st.metrics, runner.name,
                                tally=SSERewrite(render, render_error))
        stream.done, stream.dispatch = dispatch.hand_over(), dispatch
    return stream


@router.post("/models/{name}/versions/{version}/infer_stream", **KEY, **STREAM_DOCS)
@router.post("/models/{name}/infer_stream", **KEY, **STREAM_DOCS)
async def infer_stream(request: Request, name: str, version: str | None = None):
    found = await routed(request, name, version, "infer_stream")
    if isinstance(found, Response):
        return found
    body, binary, runner = found
    tensors, form = rest_inputs(body, binary)
    call = generation.decode_call(tensors, body.get("parameters") or {}, runner.request_defaults)
    if len(call.prompts) != 1:
        raise BadRequest("infer_stream takes one prompt (shape [1]); use infer for a batch", param="prompt")
    form = "contents" if form == "contents" else "data"  # an event stream carries no binary tensors
    head = {"model_name": runner.name, "model_version": VERSION} | ({"id": body["id"]} if "id" in body else {})
    return await _stream_response(request, runner, call.prompts[0], call.params, "infer_stream",
                                  event_template(head, form),
                                  lambda message: {"error_message": message, "infer_response": None})


@router.post("/models/{name}/versions/{version}/generate", **KEY, **GENERATE_DOCS)
@router.post("/models/{name}/generate", **KEY, **GENERATE_DOCS)
async def generate(request: Request, name: str, version: str | None = None):
    found = await routed(request, name, version, "generate")
    if isinstance(found, Response):
        return found
    body, _, runner = found
    call = generation.decode_generate(body, runner.request_defaults)
    forwarder = state(request).forwarder
    result = await answered(request, runner, "generate",
                            lambda: generation.complete(forwarder, runner, call.prompts[0], call.params))
    if result is None:
        return Response(status_code=499)
    return {"model_name": runner.name, "model_version": VERSION, "text_output": result.text,
            "finish_reason": result.finish_reason, "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens}


@router.post("/models/{name}/versions/{version}/generate_stream", **KEY, **GENERATE_STREAM_DOCS)
@router.post("/models/{name}/generate_stream", **KEY, **GENERATE_STREAM_DOCS)
async def generate_stream(request: Request, name: str, version: str | None = None):
    found = await routed(request, name, version, "generate_stream")
    if isinstance(found, Response):
        return found
    body, _, runner = found
    call = generation.decode_generate(body, runner.request_defaults)

    def render(piece: generation.Piece) -> bytes:
        return b"data: " + json.dumps({"model_name": runner.name, "model_version": VERSION, "text_output": piece.text,
                                       "finish_reason": piece.finish_reason}).encode() + b"\n\n"

    return await _stream_response(request, runner, call.prompts[0], call.params, "generate_stream", render,
                                  lambda message: {"error": message})
