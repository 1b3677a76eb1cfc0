"""llama-server's own routes, forwarded to the engine of the model the body names (or `?model=`, or the only
model), with the keys, queue, metrics and disconnect handling of every other route. `/slots` and
`/upstream/{model}/{path}` (anything else the engine serves, raw) need the admin key when the gateway has
keys: they show other users' prompts and reach settings."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from .. import api_docs as docs
from ..deps import require_admin, require_key, state
from ..forward import forward, pick_model, to_engine

router = APIRouter()
KEY = [Depends(require_key)]
ADMIN = [Depends(require_admin)]
# gateway path -> (endpoint label, capability type that may pick the model)
POSTED = {"/completion": ("completion", "completion"), "/infill": ("infill", "completion"),
          "/tokenize": ("tokenize", None), "/detokenize": ("detokenize", None),
          "/apply-template": ("apply_template", None), "/v1/rerank": ("rerank", None),
          "/v1/reranking": ("rerank", None)}


def _posted(path: str, endpoint: str, capability: str | None):
    async def route(request: Request):
        return await forward(request, path, endpoint, "llama", capability=capability)
    route.__name__ = endpoint
    return route


for _path, (_endpoint, _capability) in POSTED.items():
    router.add_api_route(_path, _posted(_path, _endpoint, _capability), methods=["POST"], dependencies=KEY,
                         openapi_extra=docs.body(docs.OBJECT, "llama-server's body for this route; `model` picks "
                                                 "the model"),
                         responses=docs.ok(stream=docs.LLAMA_EVENT if _endpoint in ("completion", "infill") else None))


async def _get(request: Request, path: str, endpoint: str):
    st = state(request)
    runner, _ = pick_model(st, request, None, None)
    return await to_engine(st, request, runner, path, None, "llama", endpoint, method="GET")


@router.get("/props", dependencies=KEY, responses=docs.ok())
async def props(request: Request):
    """The model's llama-server properties (`?model=` when several are served)."""
    return await _get(request, "/props", "props")


@router.get("/slots", dependencies=ADMIN, responses=docs.ok({"type": "array"}))
async def slots(request: Request):
    """The model's llama-server slots (`?model=` when several are served)."""
    return await _get(request, "/slots", "slots")


@router.api_route("/upstream/{model}/{path:path}", methods=["GET", "POST", "PUT", "DELETE"], dependencies=ADMIN,
                  responses=docs.ok())
async def upstream(request: Request, model: str, path: str):
    """Anything else the model's engine serves, passed through as it is (body, status and answer)."""
    st = state(request)
    runner = st.deployment.resolve(model)
    body = await request.body() if request.method in ("POST", "PUT") else None
    target = "/" + path + (f"?{request.url.query}" if request.url.query else "")
    return await to_engine(st, request, runner, target, body, "llama", "upstream", method=request.method, raw=True)
