"""The anyserve documents' API server, served by the gateway: where a capability is served (/route),
what is registered (/registry), and registration (/register: an SSE stream the replica holds open;
when it drops, the replica leaves the registry)."""
from __future__ import annotations

import asyncio
import json
import logging
import time

from fastapi import APIRouter, Depends, Query, Request

from ...errors import BadRequest
from ...protocols.sse import EventStream
from .. import api_docs as docs
from ..deps import json_object, require_key, require_register, state
from ..registry import parse_registration
from ..views import target_view

log = logging.getLogger("launcher.discovery")
router = APIRouter()
HEARTBEAT = 2.0  # seconds between heartbeats on a registration stream


@router.get("/route", dependencies=[Depends(require_key)], responses=docs.ok(docs.ROUTE))
async def route(request: Request, type: str = Query(min_length=1, description="the capability's type; other "
                                                     "query parameters are further keys (lang=zh)")):
    """`/route?type=chat&lang=zh` -> where to send it: `{endpoint, replica_id}` (404 when nothing serves it)."""
    query = dict(request.query_params)
    if not query:
        raise BadRequest("give the capability as query parameters, e.g. /route?type=chat")
    st = state(request)
    chosen = st.router.route(query)
    if chosen.kind == "remote":
        replica = chosen.target
        return {"endpoint": replica.endpoint, "replica_id": replica.replica_id,
                "grpc_endpoint": replica.grpc_endpoint, "capabilities": replica.capabilities}
    return {"endpoint": st.public_url, "replica_id": st.replica_id, "grpc_endpoint": st.grpc_endpoint,
            "capabilities": chosen.target.capabilities}


@router.get("/registry", dependencies=[Depends(require_key)], responses=docs.ok())
async def registry(request: Request):
    st = state(request)
    views = [target_view(r) for r in st.deployment.everything]
    local = [{"name": v.name, "kind": v.kind, "state": v.state, "capabilities": v.capabilities,
              "restarts": v.restarts, "processes": [e.as_json() for e in v.engines]} | _scale(st, r)
             for v, r in zip(views, st.deployment.everything)]
    return {"replica_id": st.replica_id, "endpoint": st.public_url, "grpc_endpoint": st.grpc_endpoint,
            "local": local, "replicas": [r.as_json() for r in st.registry.replicas]}


def _scale(st, runner) -> dict:
    """A worker scaled by load: its range, how many run and how many requests wait in its queue."""
    spec = runner.spec
    if not (runner.is_worker and spec.scales):
        return {}
    return {"scale": {"min": spec.processes, "max": spec.max_processes, "running": len(runner.upstreams),
                      "queued": st.forwarder.slots.waiting(runner), "scale_up_after": spec.scale_up_after,
                      "scale_down_after": spec.scale_down_after}}


def _event(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


@router.post("/register", dependencies=[Depends(require_register)], openapi_extra=docs.body(docs.REGISTER),
             responses=docs.ok(stream=docs.REGISTER_EVENT))
async def register(request: Request):
    st = state(request)
    body, _ = await json_object(request)
    replica = parse_registration(body)
    st.registry.register(replica)
    log.info("replica %s registered from %s: %d capabilities", replica.replica_id, replica.endpoint,
             len(replica.capabilities))

    async def events():
        yield _event("registered", {"replica_id": replica.replica_id, "registry": st.replica_id,
                                    "heartbeat": HEARTBEAT})
        beat = 0
        while not st.exiting():  # a gateway shutting down ends the stream (the replica re-registers later)
            await asyncio.sleep(0.5)
            if time.monotonic() - beat >= HEARTBEAT:
                beat = time.monotonic()
                yield _event("heartbeat", {"time": time.time()})

    async def close():
        if st.registry.unregister(replica):
            log.info("replica %s unregistered (its registration stream ended)", replica.replica_id)
    return EventStream(events(), close)
