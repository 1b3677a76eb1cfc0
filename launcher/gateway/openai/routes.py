"""`/v1`: the OpenAI-compatible routes (chat, completions, embeddings, the Responses API, models). Thin: each resolves the model (by `model`, or by an X-Capability
query among the models) and hands the bytes to the proxy."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from .. import api_docs as docs
from ..deps import require_key, state
from ..dispatch import names_of
from ..forward import forward
from ..keys import current
from ..views import target_view

router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])


@router.post("/chat/completions", openapi_extra=docs.body(docs.CHAT), responses=docs.ok(docs.CHAT_ANSWER, stream=docs.OPENAI_EVENT))
async def chat(request: Request):
    return await forward(request, "/v1/chat/completions", "chat", "openai", capability="chat", defaults=True)


@router.post("/completions", openapi_extra=docs.body(docs.COMPLETION), responses=docs.ok(docs.CHAT_ANSWER, stream=docs.OPENAI_EVENT))
async def completions(request: Request):
    return await forward(request, "/v1/completions", "completions", "openai", capability="completion",
                         defaults=True)


@router.post("/embeddings", openapi_extra=docs.body(docs.EMBEDDING), responses=docs.ok())
async def embeddings(request: Request):
    return await forward(request, "/v1/embeddings", "embeddings", "openai", capability="embed")


@router.post("/responses", openapi_extra=docs.body(docs.RESPONSES), responses=docs.ok(docs.RESPONSE, stream=docs.RESPONSE_EVENT))
async def responses(request: Request):
    return await forward(request, "/v1/responses", "responses", "openai", capability="chat")


@router.get("/models", responses=docs.ok(docs.MODEL_LIST))
async def models(request: Request):
    data, who = [], current.get()
    for r in state(request).deployment.models:
        if not who.may_use(names_of(r)):  # a named key sees only the models it may use
            continue
        view = target_view(r)
        data.append({"id": r.name, "object": "model", "created": int(r.started_at or 0), "owned_by": "launcher",
                     "aliases": list(r.plan.aliases), "state": view.state, "restarts": view.restarts,
                     "engines": [e.as_json() for e in view.engines]})
        for alias in getattr(r.spec, "served_aliases", ()):  # `aliases:` are names clients may pick from the list
            data.append({"id": alias, "object": "model", "created": int(r.started_at or 0), "owned_by": "launcher",
                         "alias_of": r.name, "state": view.state})
    return {"object": "list", "data": data}
