"""Capabilities: what a served thing can do, as key-value sets (`{type: "chat", model: "llama-70b"}`,
`{type: "embed"}`), and the one rule that routes by them.

A query matches a capability when every key of the query is in the capability with an equal value
(the anyserve runtime's rule; "2" equals 2, since queries often come from URLs and headers). Among the
targets with a matching capability, the least loaded ready one wins; when none is ready, one that can be
loaded on demand.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence


def matches(capability: Mapping[str, Any], query: Mapping[str, Any]) -> bool:
    for key, wanted in query.items():
        if key not in capability:
            return False
        have = capability[key]
        if have != wanted and str(have) != str(wanted):
            return False
    return True


def parse_query(text: str) -> dict[str, str]:
    """`type=chat,lang=zh` (the X-Capability header) -> {"type": "chat", "lang": "zh"}."""
    query = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"capability query part {part!r} is not key=value")
        query[key.strip()] = value.strip()
    return query


def show(capability: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in capability.items()) + "}"


@dataclass(frozen=True)
class Candidate:
    """A target a request may go to: a local model or worker group, or a registered remote replica."""
    target: Any
    capabilities: Sequence[Mapping[str, Any]]
    load: float = 0.0        # in-flight requests per slot
    ready: bool = True
    loadable: bool = True    # not ready now, but would load for a request (on-demand models)


def choose(query: Mapping[str, Any], candidates: Iterable[Candidate]) -> Candidate | None:
    matching = [c for c in candidates if any(matches(cap, query) for cap in c.capabilities)]
    pool = [c for c in matching if c.ready] or [c for c in matching if c.loadable]
    return min(pool, key=lambda c: c.load) if pool else None
