"""Replicas registered with this gateway, which is then the API server of the anyserve documents.

A replica (another launch with `gateway.register_with`) POSTs /register and keeps the answer, an SSE
stream, open; the stream's end unregisters it. A RemoteReplica has what Dispatch and Forwarder use of a
ModelRunner (both are `supervise.targets.Target`s), so a request relayed to another gateway is counted and released like any other.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..errors import BadRequest
from ..supervise.states import ModelState
from ..supervise.targets import Upstreams


@dataclass(eq=False)
class RemoteEndpoint:
    """The replica's gateway, as an upstream (its own gateway queues, so many requests may be in flight)."""
    url: str
    slots: int = 64
    in_flight: int = 0
    served: int = 0
    ready: bool = True


@dataclass(eq=False)
class RemoteReplica(Upstreams):
    """A Target (supervise/targets.py) that another gateway serves: load, busy and pick are a runner's."""
    replica_id: str
    endpoint: str                       # its gateway's base URL (REST)
    capabilities: list[dict]
    grpc_endpoint: str | None = None    # host:port of its KServe gRPC, when it has one
    registered_at: float = field(default_factory=time.time)
    upstreams: list[RemoteEndpoint] = field(default_factory=list)
    # the rest of a Target
    state: ModelState = ModelState.READY
    pending: int = 0
    held: bool = False
    request_defaults: dict = field(default_factory=dict)
    is_worker: bool = False

    def __post_init__(self) -> None:
        self.upstreams = [RemoteEndpoint(self.endpoint)]

    @property
    def name(self) -> str:
        return f"replica:{self.replica_id}"

    def as_json(self) -> dict:
        return {"replica_id": self.replica_id, "endpoint": self.endpoint, "grpc_endpoint": self.grpc_endpoint,
                "capabilities": self.capabilities, "registered_at": self.registered_at,
                "in_flight": self.upstreams[0].in_flight, "served": self.upstreams[0].served}


def _scalar(value) -> bool:
    return isinstance(value, (str, int, float, bool))


def parse_registration(body: dict) -> RemoteReplica:
    """A /register body, checked: {replica_id, endpoint, capabilities: [{k: v}], grpc_endpoint?}."""
    replica_id, endpoint, caps = body.get("replica_id"), body.get("endpoint"), body.get("capabilities")
    if not isinstance(replica_id, str) or not replica_id:
        raise BadRequest("`replica_id` must be a non-empty string", param="replica_id")
    if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
        raise BadRequest("`endpoint` must be the replica's http(s) URL", param="endpoint")
    if not isinstance(caps, list) or not all(isinstance(c, dict) and c and all(map(_scalar, c.values()))
                                             for c in caps):
        raise BadRequest("`capabilities` must be a list of non-empty objects of strings, numbers or booleans",
                         param="capabilities")
    grpc_endpoint = body.get("grpc_endpoint")
    if grpc_endpoint is not None and not isinstance(grpc_endpoint, str):
        raise BadRequest("`grpc_endpoint` must be host:port", param="grpc_endpoint")
    return RemoteReplica(replica_id, endpoint.rstrip("/"), caps, grpc_endpoint)


class Registry:
    def __init__(self) -> None:
        self._replicas: dict[str, RemoteReplica] = {}

    @property
    def replicas(self) -> tuple[RemoteReplica, ...]:
        return tuple(self._replicas.values())

    def register(self, replica: RemoteReplica) -> None:
        """Add, or replace an entry of the same id (a replica re-registering with new capabilities)."""
        self._replicas[replica.replica_id] = replica

    def unregister(self, replica: RemoteReplica) -> bool:
        """Remove this very entry (not one that replaced it since)."""
        if self._replicas.get(replica.replica_id) is replica:
            del self._replicas[replica.replica_id]
            return True
        return False
