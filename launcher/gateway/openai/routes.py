"""`/v1`: the OpenAI-compatible routes. Thin: each resolves the model (by `model`, or by an X-Capability
query among the models) and hands the bytes to the proxy."""
from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from .. import api_docs as docs
from ..deps import json_object, require_key, state
from ..dispatch import Dispatch
from ..limits import cap_max_tokens
from ..proxy import LoadingSSE, SSEPassthrough
from ..routing import CAPABILITY_HEADER, header_query
from ..views import target_view

router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])
CAPABILITY_TYPE = {"chat": "chat", "completions": "completion", "embeddings": "embed"}  # endpoint -> `type`


@router.post("/chat/completions", openapi_extra=docs.body(docs.CHAT), responses=docs.ok(docs.CHAT_ANSWER, stream=docs.OPENAI_EVENT))
async def chat(request: Request):
    return await forward(request, "/v1/chat/completions", "chat")


@router.post("/completions", openapi_extra=docs.body(docs.COMPLETION), responses=docs.ok(docs.CHAT_ANSWER, stream=docs.OPENAI_EVENT))
async def completions(request: Request):
    return await forward(request, "/v1/completions", "completions")


@router.post("/embeddings", openapi_extra=docs.body(docs.EMBEDDING), responses=docs.ok())
async def embeddings(request: Request):
    return await forward(request, "/v1/embeddings", "embeddings")


@router.get("/models", responses=docs.ok(docs.MODEL_LIST))
async def models(request: Request):
    data = []
    for r in state(request).deployment.models:
        view = target_view(r)
        data.append({"id": r.name, "object": "model", "created": int(r.started_at or 0), "owned_by": "launcher",
                     "aliases": list(r.plan.aliases), "state": view.state, "restarts": view.restarts,
                     "engines": [e.as_json() for e in view.engines]})
    return {"object": "list", "data": data}


async def forward(request: Request, path: str, endpoint: str) -> Response:
    st = state(request)
    body, raw = await json_object(request)
    missing = {}
    if request.headers.get(CAPABILITY_HEADER):  # X-Capability: type=chat,lang=zh picks the model
        query = {"type": CAPABILITY_TYPE[endpoint], **header_query(request.headers)}
        runner = st.router.route(query, kinds=("model",)).target
        missing["model"] = runner.name
    else:
        runner = st.deployment.resolve(body.get("model"))
    if endpoint != "embeddings":
        missing |= {k: v for k, v in runner.request_defaults.items() if k not in body}
    body.update(missing)
    capped = cap_max_tokens(body, runner.spec.params.n_ctx)  # more than the context can never be given
    stream = body.get("stream") is True
    payload = json.dumps(body).encode() if missing or capped else raw
    async with Dispatch(st, runner, "openai", endpoint) as call:
        if stream and call.needs_load:  # answer now, keep the stream alive while the model loads
            return LoadingSSE(call.loaded, st.forwarder, runner, path, payload, done=call.hand_over())
        await call.loaded()
        if stream:
            resp = await st.forwarder.stream(runner, path, payload)
            call.status = resp.status_code
            if isinstance(resp, SSEPassthrough):
                resp.done, resp.dispatch = call.hand_over(), call
            return resp
        resp = await st.forwarder.complete(runner, path, payload, request.receive)
        call.status = resp.status_code
        return resp
