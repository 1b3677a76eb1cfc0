"""One request forwarded to the engine of the model it names, the same for every API family that llama-server
speaks (OpenAI, Anthropic, its own routes): the model resolved (`model` in the body, `?model=`, the only
model, or an X-Capability query), admitted, loaded on demand, a stream relayed on the fast path (the
bytes pass through), a whole answer fetched; counted by protocol and endpoint."""
from __future__ import annotations

import json

from fastapi import Request
from fastapi.responses import Response

from ..protocols.sse import ANTHROPIC_STREAM, LLAMA_STREAM, OPENAI_STREAM, RESPONSES_STREAM
from ..supervise.runner import ModelRunner
from .deps import GatewayState, json_object, state
from .dispatch import Dispatch
from .limits import cap_max_tokens
from .param_rules import apply_rules
from .proxy import LoadingSSE, SSEPassthrough
from .routing import CAPABILITY_HEADER, header_query

# The engine path -> how its stream ends and counts tokens (every other stream is OpenAI's).
STREAMS = {"/v1/messages": ANTHROPIC_STREAM, "/v1/responses": RESPONSES_STREAM, "/completion": LLAMA_STREAM,
           "/infill": LLAMA_STREAM}


def pick_model(st: GatewayState, request: Request, named, capability: str | None) -> tuple[ModelRunner, bool]:
    """(the model, whether the body must name it): X-Capability picks among the models when the route has a
    capability type; else the body's `model`, the `?model=` query, or the only model."""
    if capability and request.headers.get(CAPABILITY_HEADER):  # X-Capability: type=chat,lang=zh
        query = {"type": capability, **header_query(request.headers)}
        return st.router.route(query, kinds=("model",)).target, True
    return st.deployment.resolve(named if named is not None else request.query_params.get("model")), False


async def forward(request: Request, path: str, endpoint: str, protocol: str, *, capability: str | None = None,
                  defaults: bool = False) -> Response:
    """POST `path` to the engine; `defaults` adds the model's request defaults and caps max_tokens (OpenAI's
    generation routes)."""
    st = state(request)
    body, raw = await json_object(request)
    runner, name_it = pick_model(st, request, body.get("model"), capability)
    missing = {"model": runner.name} if name_it else {}
    if defaults:
        missing |= {k: v for k, v in runner.request_defaults.items() if k not in body}
    body.update(missing)
    ruled = apply_rules(body, runner.spec)  # the model's set_params / strip_params
    capped = defaults and cap_max_tokens(body, runner.spec.params.n_ctx)  # never more than the context
    payload = json.dumps(body).encode() if missing or ruled or capped else raw
    return await to_engine(st, request, runner, path, payload, protocol, endpoint, stream=body.get("stream") is True)


async def to_engine(st: GatewayState, request: Request, runner: ModelRunner, path: str, payload: bytes | None,
                    protocol: str, endpoint: str, stream: bool = False, method: str = "POST",
                    raw: bool = False) -> Response:
    async with Dispatch(st, runner, protocol, endpoint) as call:
        kind = STREAMS.get(path, OPENAI_STREAM)
        if stream and call.needs_load:  # answer now, keep the stream alive while the model loads
            return LoadingSSE(call.loaded, st.forwarder, runner, path, payload, done=call.hand_over(), kind=kind)
        await call.loaded()
        if stream:
            resp = await st.forwarder.stream(runner, path, payload, kind)
            call.status = resp.status_code
            if isinstance(resp, SSEPassthrough):
                resp.done, resp.dispatch = call.hand_over(), call
            return resp
        resp = await st.forwarder.complete(runner, path, payload, request.receive, method, raw)
        call.status = resp.status_code
        return resp
