"""KServe v2 over gRPC: `inference.GRPCInferenceService` in the gateway's own event loop and process, on the
HTTP port and on `gateway.grpc_port` (the HTTP/2 side is grpc_http2.py; keys are checked there). Same models,
routing, metrics and generation path as REST.

ModelStreamInfer is Triton's: one stream carries many requests; each gets one response per engine
chunk (the last with the real finish reason and `triton_final_response`), errors as `error_message`.
A cancelled call, or a client gone, closes the engine request, which frees its slot.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Awaitable, Callable, Optional

import grpc
import httpx

from ...errors import APIError, BadRequest, NotFound
from ...protocols.kserve import grpc_predict_v2_pb2 as pb
from ...protocols.kserve import inputs as kserve_inputs
from ...protocols.kserve.tensors import CONTENTS, encode_raw, grpc_inputs, grpc_parameters
from ...protocols.kserve.wire import json_request, proto_response, set_parameters
from ...supervise.states import ModelState
from ..deps import GatewayState
from ..dispatch import Dispatch
from ..proxy import RETRYABLE, EngineStreamError
from ..quota import report
from ..routing import Route, route_kserve
from . import generation
from .metadata import EXTENSIONS, PLATFORM, launcher_version
from .relay import RelayError, error_message, relay, relay_headers, relay_stream
from .rest import VERSION
from .streams import CompletionChunks, GrpcMessages

log = logging.getLogger("launcher.grpc")
Emit = Callable[[pb.ModelStreamInferResponse], Optional[Awaitable[None]]]  # sends one response; may ask to wait
STATUS = {400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
          403: grpc.StatusCode.PERMISSION_DENIED, 404: grpc.StatusCode.NOT_FOUND,
          405: grpc.StatusCode.UNIMPLEMENTED, 409: grpc.StatusCode.FAILED_PRECONDITION,
          429: grpc.StatusCode.RESOURCE_EXHAUSTED, 500: grpc.StatusCode.INTERNAL,
          502: grpc.StatusCode.UNAVAILABLE, 503: grpc.StatusCode.UNAVAILABLE}


def _response(name: str, request_id: str, texts: list[str], reasons: list[str], raw: bool,
              parameters: dict) -> pb.ModelInferResponse:
    """Outputs as the request sent its inputs: raw contents (tritonclient) or typed contents (anyserve)."""
    resp = pb.ModelInferResponse(model_name=name, model_version=VERSION, id=request_id)
    set_parameters(resp.parameters, parameters)
    for out_name, values in (("text_output", [t.encode() for t in texts]), ("finish_reason", [r.encode() for r in reasons])):
        tensor = resp.outputs.add(name=out_name, datatype="BYTES", shape=[len(values)])
        if raw:
            resp.raw_output_contents.append(encode_raw("BYTES", values))
        else:
            getattr(tensor.contents, CONTENTS["BYTES"]).extend(values)
    return resp


class InferenceService:
    def __init__(self, state: GatewayState):
        self.st = state

    async def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=all(r.state in (ModelState.READY, ModelState.STOPPED)
                                                for r in self.st.deployment.everything))

    async def ServerMetadata(self, request, context):
        return pb.ServerMetadataResponse(name="launcher", version=launcher_version(), extensions=EXTENSIONS)

    async def ModelReady(self, request, context):
        chosen = await self._model(request.name, request.version, context)
        return pb.ModelReadyResponse(ready=chosen.target.state == ModelState.READY)

    async def ModelMetadata(self, request, context):
        chosen = await self._model(request.name, request.version, context)
        if chosen.kind != "model":  # a worker's tensors are its handlers' business
            return pb.ModelMetadataResponse(name=request.name, versions=[VERSION], platform="launcher.worker")
        meta = pb.ModelMetadataResponse(name=chosen.target.name, versions=[VERSION], platform=PLATFORM)
        for i in kserve_inputs.INPUTS:
            meta.inputs.add(name=i.name, datatype=i.datatype, shape=list(i.shape))
        for name, datatype in kserve_inputs.OUTPUTS:
            meta.outputs.add(name=name, datatype=datatype, shape=[-1])
        return meta

    async def _model(self, name: str, version: str, context) -> Route:
        try:
            if version not in ("", VERSION):
                raise NotFound(f"model {name!r} has no version {version!r}")
            return route_kserve(self.st.router, name, {}, _metadata(context))
        except APIError as exc:
            await context.abort(STATUS.get(exc.status, grpc.StatusCode.NOT_FOUND), exc.message)

    async def ModelInfer(self, request, context):
        try:
            return await self._infer(request, _metadata(context))
        except APIError as exc:
            await context.abort(STATUS.get(exc.status, grpc.StatusCode.INTERNAL), exc.message)

    async def _infer(self, request, metadata: dict) -> pb.ModelInferResponse:
        chosen = route_kserve(self.st.router, request.model_name, grpc_parameters(request.parameters), metadata)
        if chosen.kind != "model":
            return await self._relay(request, chosen, metadata)
        runner = chosen.target
        tensors, form = grpc_inputs(request)
        call = generation.decode_call(tensors, grpc_parameters(request.parameters), runner.request_defaults)
        async with Dispatch(self.st, runner, "grpc", "ModelInfer") as dispatch:
            await dispatch.loaded()
            results = await asyncio.gather(*(generation.complete(self.st.forwarder, runner, p, call.params)
                                             for p in call.prompts))
            dispatch.status = 200
        tokens = {"prompt_tokens": sum(r.prompt_tokens for r in results),
                  "completion_tokens": sum(r.completion_tokens for r in results)}
        return _response(runner.name, request.id, [r.text for r in results], [r.finish_reason for r in results],
                         form == "raw", tokens)

    async def _relay(self, request, chosen: Route, metadata: dict) -> pb.ModelInferResponse:
        """To a worker or replica, over REST (the message in its JSON form), and the answer back."""
        path = f"/v2/models/{request.model_name}/infer"
        status, _, content = await relay(self.st, chosen, path, json.dumps(json_request(request)).encode(),
                                         relay_headers(self.st, chosen, metadata), "grpc", "ModelInfer")
        if status >= 400:
            raise RelayError(status, error_message(content))
        return proto_response(json.loads(content), raw=bool(request.raw_input_contents))

    async def _relay_stream(self, request, chosen: Route, metadata: dict, emit: Emit) -> None:
        path = f"/v2/models/{request.model_name}/infer_stream"
        async with contextlib.AsyncExitStack() as stack:
            events = await relay_stream(self.st, chosen, path, json.dumps(json_request(request)).encode(),
                                        relay_headers(self.st, chosen, metadata), "grpc", "ModelStreamInfer", stack)
            async for event in events:
                inner = event.get("infer_response")
                pending = emit(pb.ModelStreamInferResponse(
                    error_message=event.get("error_message") or "",
                    infer_response=proto_response(inner, raw=bool(request.raw_input_contents)) if inner
                    else pb.ModelInferResponse(id=request.id)))
                if pending is not None:
                    await pending

    async def _relay_engine(self, runner, request, call, raw: bool, emit: Emit) -> int:
        """The engine's stream as messages, made and sent in the upstream socket's callback (streams.py); a
        failure or a cut stream raises EngineStreamError. Returns the tokens sent."""
        forwarder = self.st.forwarder
        up, resp = await generation.open_engine_stream(forwarder, runner, call.prompts[0], call.params)
        chunks, messages = CompletionChunks(), GrpcMessages(runner.name, VERSION, request.id, raw)

        def sink(chunk: bytes):
            pending = None
            for piece in chunks.feed(chunk):
                pending = emit(messages.message(piece)) or pending
            return pending   # the client reads slower than the engine writes: stop reading the engine meanwhile
        try:
            await resp.relay(sink)
        except RETRYABLE + (httpx.ReadTimeout,) as exc:
            raise EngineStreamError(f"the engine failed mid-stream ({type(exc).__name__})") from exc
        finally:
            await resp.aclose()  # closing the connection makes llama-server free the slot
            forwarder.release(runner, up)
            self.st.metrics.tokens.labels(runner.name).inc(chunks.tokens)
            report(*(chunks.usage or (0, chunks.tokens)))
        if not chunks.done:
            raise EngineStreamError("the engine's stream ended before [DONE] (truncated)")
        return chunks.tokens

    async def ModelStreamInfer(self, request_iterator, context) -> None:
        """Requests are served concurrently; their responses interleave, each with its request's id, and are
        sent as they are made (`context.emit`). When the call ends (the client cancelled or left), every engine
        request of the stream ends with it."""
        tasks: set[asyncio.Task] = set()
        metadata = _metadata(context)
        try:
            async for request in request_iterator:
                task = asyncio.create_task(self._stream_one(request, context.emit, metadata))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            while tasks:
                await asyncio.wait(set(tasks))
        finally:
            for task in tasks:
                task.cancel()
            for task in list(tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _stream_one(self, request, emit: Emit, metadata: dict) -> None:
        try:
            chosen = route_kserve(self.st.router, request.model_name, grpc_parameters(request.parameters), metadata)
            if chosen.kind != "model":
                return await self._relay_stream(request, chosen, metadata, emit)
            runner = chosen.target
            tensors, form = grpc_inputs(request)
            call = generation.decode_call(tensors, grpc_parameters(request.parameters), runner.request_defaults)
            if len(call.prompts) != 1:
                raise BadRequest("a streamed request takes one prompt (shape [1])")
            async with Dispatch(self.st, runner, "grpc", "ModelStreamInfer") as dispatch:
                await dispatch.loaded()
                dispatch.tokens_out = await self._relay_engine(runner, request, call, form == "raw", emit)
                dispatch.status = 200
        except APIError as exc:
            emit(pb.ModelStreamInferResponse(error_message=exc.message, infer_response=pb.ModelInferResponse(id=request.id)))
        except Exception:  # a bug: the caller gets an error, the log gets the traceback
            log.exception("ModelStreamInfer request %r failed", request.id)
            emit(pb.ModelStreamInferResponse(error_message="internal error in the gateway",
                                             infer_response=pb.ModelInferResponse(id=request.id)))


def _metadata(context) -> dict[str, str]:
    """A call's metadata as lower-case headers (keys, X-Capability)."""
    return {k.lower(): v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
