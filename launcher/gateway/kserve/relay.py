"""A KServe request relayed to a Python worker or to a registered replica's gateway: the body as the
caller sent it, plus the resolved capability query, counted and released like any request (Dispatch).

Streams come back as SSE events `{error_message, infer_response}`; a relay that breaks mid-stream (a
worker killed, a replica gone) ends with an error event, never a silent end.
"""
from __future__ import annotations

import contextlib
import json
from typing import AsyncIterator, Mapping

import httpx

from ...errors import APIError
from ...protocols.kserve.rest_body import BINARY_HEADER
from ..deps import GatewayState
from ..dispatch import Dispatch
from ..proxy import RETRYABLE
from ..routing import FORWARDED_HEADER, QUERY_HEADER, Route

PASSED = ("content-type", "authorization", "x-api-key", BINARY_HEADER)  # a replica checks the caller's key


class RelayError(APIError):
    """What the worker or replica answered with an error status: its status and message, passed on."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.code = "handler_error" if status == 500 else "relay_error"


def relay_headers(st: GatewayState, route: Route, incoming: Mapping[str, str]) -> dict:
    headers = {k: v for k in PASSED if (v := incoming.get(k))}
    headers.setdefault("content-type", "application/json")
    headers[QUERY_HEADER] = json.dumps(route.query)
    headers[FORWARDED_HEADER] = st.replica_id
    return headers


def error_message(content: bytes) -> str:
    try:
        data = json.loads(content)
    except ValueError:
        return content.decode(errors="replace")[:500]
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return data["error"]
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return str(data["error"].get("message"))
    return str(data)[:500]


async def relay(st: GatewayState, route: Route, path: str, body: bytes, headers: dict, protocol: str,
                endpoint: str) -> tuple[int, httpx.Headers, bytes]:
    """The whole answer of a non-streamed call (errors included, for the caller to pass on)."""
    async with Dispatch(st, route.target, protocol, endpoint) as dispatch:
        await dispatch.loaded()
        status, resp_headers, content = await st.forwarder.fetch(route.target, path, body, headers, replayable=False)
        dispatch.status = status
    return status, resp_headers, content


async def relay_stream(st: GatewayState, route: Route, path: str, body: bytes, headers: dict, protocol: str,
                       endpoint: str, stack: contextlib.AsyncExitStack) -> AsyncIterator[dict]:
    """Open a streamed call; its events, decoded. The upstream closes (and the request is released)
    when `stack` closes. An error status before the stream raises RelayError."""
    async with Dispatch(st, route.target, protocol, endpoint) as dispatch:
        await dispatch.loaded()
        up, resp = await st.forwarder.open(route.target, path, body, headers, replayable=False)

        async def close() -> None:
            await resp.aclose()
            st.forwarder.release(route.target, up)
        stack.push_async_callback(close)
        dispatch.status = resp.status_code
        if resp.status_code >= 400:
            raise RelayError(resp.status_code, error_message(await resp.aread()))
        stack.callback(dispatch.hand_over(resp.status_code))
    return _events(resp, route.target.name)


async def _events(resp: httpx.Response, name: str) -> AsyncIterator[dict]:
    try:
        async for line in resp.aiter_lines():
            if line.startswith("data: "):
                yield json.loads(line[6:])
    except RETRYABLE + (httpx.ReadTimeout,) as exc:
        yield {"error_message": f"{name} failed mid-stream ({type(exc).__name__}); retry", "infer_response": None}
