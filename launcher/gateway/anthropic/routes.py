"""`/v1/messages`: the Anthropic Messages API, which llama-server speaks itself. Thin: the model by `model`,
the body passed through, streamed events (`message_start` ... `message_stop`) relayed as they come.
Errors come in Anthropic's envelope (protocols/envelopes.py); keys as `x-api-key` or `Authorization`."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from .. import api_docs as docs
from ..deps import require_key
from ..forward import forward

router = APIRouter(prefix="/v1/messages", dependencies=[Depends(require_key)])


@router.post("", openapi_extra=docs.body(docs.MESSAGES), responses=docs.ok(docs.MESSAGE, stream=docs.ANTHROPIC_EVENT))
async def messages(request: Request):
    return await forward(request, "/v1/messages", "messages", "anthropic", capability="chat")


@router.post("/count_tokens", openapi_extra=docs.body(docs.COUNT_TOKENS), responses=docs.ok(docs.TOKEN_COUNT))
async def count_tokens(request: Request):
    return await forward(request, "/v1/messages/count_tokens", "count_tokens", "anthropic", capability="chat")
