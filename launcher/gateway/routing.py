"""Which target serves a request: a served model by name, as always, or else whatever matches the
request's capability query among local models, local workers and registered replicas (the rule is
`capabilities.choose`: every queried key equal, least loaded ready target first).

Where the query comes from:
    KServe        model name = capability `type`, plus those of the request's `parameters` that are
                  capability keys here (a key some capability has; others are the handler's own)
    any request   `X-Capability: type=chat,lang=zh` (added to the above)
    relayed       `X-Capability-Query: {json}`: the query another gateway resolved; a request relayed
                  by a gateway (`X-Launcher-Forwarded`) is served here, never relayed again
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Mapping

from ..capabilities import Candidate, choose, matches, parse_query, show
from ..errors import BadRequest, CapabilityNotFound, EngineUnavailable
from ..protocols.kserve.inputs import ENGINE_EXTRAS, PARAMETERS
from ..supervise.deployment import Deployment
from ..supervise.states import ModelState
from ..supervise.targets import Target
from .registry import Registry, RemoteReplica

CAPABILITY_HEADER = "x-capability"
QUERY_HEADER = "x-capability-query"
FORWARDED_HEADER = "x-launcher-forwarded"
# Request parameters that steer generation or the protocol: never capability keys.
NOT_CAPABILITY = frozenset(PARAMETERS + ENGINE_EXTRAS + (
    "max_new_tokens", "binary_data_output", "stream", "triton_enable_empty_final_response", "sequence_id",
    "sequence_start", "sequence_end", "priority", "timeout"))
KINDS = ("model", "worker", "remote")


@dataclass(frozen=True)
class Route:
    target: Target
    query: dict

    @property
    def kind(self) -> str:
        if isinstance(self.target, RemoteReplica):
            return "remote"
        return "worker" if self.target.is_worker else "model"


class Router:
    def __init__(self, deployment: Deployment, registry: Registry):
        self.deployment, self.registry = deployment, registry

    def candidates(self, local_only: bool = False, kinds: tuple[str, ...] = KINDS) -> list[Candidate]:
        out = []
        if "model" in kinds:
            out += [Candidate(r, r.capabilities, r.load, r.state.serving,
                              loadable=not r.held and r.state != ModelState.FAILED) for r in self.deployment.models]
        if "worker" in kinds:
            out += [Candidate(w, w.capabilities, w.load, w.state.serving, loadable=False)
                    for w in self.deployment.workers]
        if "remote" in kinds and not local_only:
            out += [Candidate(r, r.capabilities, r.load) for r in self.registry.replicas]
        return out

    def route(self, query: Mapping, *, local_only: bool = False, kinds: tuple[str, ...] = KINDS) -> Route:
        candidates = self.candidates(local_only, kinds)
        chosen = choose(query, candidates)
        if chosen is not None:
            return Route(chosen.target, dict(query))
        matching = [c.target.name for c in candidates if any(matches(cap, query) for cap in c.capabilities)]
        if matching:
            raise EngineUnavailable(f"{show(query)} is served by {', '.join(matching)}, none of which can take "
                                    "requests now", retry_after=5)
        available = ", ".join(show(c) for c in self.available(candidates)) or "nothing"
        raise CapabilityNotFound(f"nothing here serves {show(query)}; available capabilities: {available}")

    @staticmethod
    def available(candidates: list[Candidate]) -> list[dict]:
        out: list[dict] = []
        for c in candidates:
            out += [cap for cap in c.capabilities if cap not in out]
        return out

    def local_capabilities(self) -> list[dict]:
        """What this gateway serves itself (what it registers with another)."""
        return self.available(self.candidates(local_only=True))


def header_query(headers: Mapping[str, str]) -> dict:
    """The capability query a request's headers carry (X-Capability-Query JSON, X-Capability k=v)."""
    query: dict = {}
    raw = headers.get(QUERY_HEADER)
    if raw:
        try:
            query = json.loads(raw)
        except ValueError as exc:
            raise BadRequest(f"{QUERY_HEADER} is not JSON: {exc}") from exc
        if not isinstance(query, dict):
            raise BadRequest(f"{QUERY_HEADER} must be a JSON object")
    text = headers.get(CAPABILITY_HEADER)
    if text:
        try:
            query.update(parse_query(text))
        except ValueError as exc:
            raise BadRequest(f"{CAPABILITY_HEADER}: {exc}; write it as type=chat,lang=zh") from exc
    return query


def route_kserve(router: Router, name: str, parameters: Mapping, headers: Mapping[str, str]) -> Route:
    """A KServe request for `name`: a served model of that name; else the capability {type: name} (with
    the request's parameters that are capability keys, and its headers); else a capability {model: name} (a Python worker's
    model, or one a registered replica serves)."""
    local_only = bool(headers.get(FORWARDED_HEADER))
    if headers.get(QUERY_HEADER):  # relayed: the query was resolved by the gateway before us
        return router.route(header_query(headers), local_only=local_only)
    runner = router.deployment.find(name)
    if runner is not None:
        return Route(runner, {})
    keys = {k for c in router.candidates(local_only) for cap in c.capabilities for k in cap}
    extra = {k: v for k, v in parameters.items()
             if k in keys and k not in NOT_CAPABILITY and isinstance(v, (str, int, float, bool))}
    extra.update(header_query(headers))
    query = {"type": name, **extra}
    try:
        return router.route(query, local_only=local_only)
    except CapabilityNotFound:
        if "type" in header_query(headers):
            raise
        try:  # a worker's or another gateway's model (the llama.cpp worker's `model: <name>`)
            return router.route({**extra, "model": name}, local_only=local_only)
        except (CapabilityNotFound, EngineUnavailable):
            pass
        raise
