"""A KServe v2 REST request body: the JSON part and the binary part (binary tensor data extension, whose
JSON length the `Inference-Header-Content-Length` header gives), with its top-level fields checked."""
from __future__ import annotations

import json

from starlette.requests import Request

from ...errors import BadRequest

BINARY_HEADER = "inference-header-content-length"


async def read_request(request: Request) -> tuple[dict, bytes]:
    """The JSON part and the binary part (binary tensor data extension) of a request."""
    raw = await request.body()
    header = request.headers.get(BINARY_HEADER)
    cut = len(raw)
    if header is not None:
        if not header.isdigit() or int(header) > len(raw):
            raise BadRequest(f"{BINARY_HEADER} {header!r} does not fit the request body")
        cut = int(header)
    try:
        body = json.loads(raw[:cut])
    except ValueError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    for key, kind, what in (("parameters", dict, "an object"), ("outputs", list, "a list"), ("id", str, "a string")):
        if key in body and not isinstance(body[key], kind):
            raise BadRequest(f"`{key}` must be {what}", param=key)
    return body, raw[cut:]
