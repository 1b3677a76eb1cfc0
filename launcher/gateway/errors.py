"""One error envelope for every non-2xx answer: {"error": {"message", "type", "param", "code"}}.

Routes raise these; one handler renders them. Codes are strings, as OpenAI's are.
"""
from __future__ import annotations

import json

from fastapi.responses import JSONResponse


class APIError(Exception):
    status = 500
    type = "server_error"
    code = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message, self.param, self.headers = message, param, headers or {}

    def body(self) -> dict:
        return envelope(self.message, self.type, self.code, self.param)


class BadRequest(APIError):
    status, type, code = 400, "invalid_request_error", "invalid_request"


class Unauthorized(APIError):
    status, type, code = 401, "authentication_error", "invalid_api_key"


class ModelNotFound(APIError):
    status, type, code = 404, "invalid_request_error", "model_not_found"


class EngineUnavailable(APIError):
    status, type, code = 503, "server_error", "model_unavailable"

    def __init__(self, message: str, retry_after: int = 2):
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class QueueFull(EngineUnavailable):
    code = "queue_full"


class UpstreamError(APIError):
    status, type, code = 502, "server_error", "upstream_error"


def envelope(message: str, type_: str, code: str, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def render(exc: APIError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def sse_error(message: str, code: str = "upstream_error") -> bytes:
    """An error after SSE headers went out: an error event, then [DONE] (as vLLM does)."""
    return (b"data: " + json.dumps(envelope(message, "server_error", code)).encode() + b"\n\n"
            + b"data: [DONE]\n\n")


def normalize_upstream_error(status: int, body: bytes) -> dict:
    """llama-server's errors carry integer codes; give clients the one envelope with string codes."""
    try:
        data = json.loads(body)
        err = data.get("error", data) if isinstance(data, dict) else {}
        message = err.get("message") or body.decode(errors="replace")
        type_ = err.get("type") or ("invalid_request_error" if status < 500 else "server_error")
    except (ValueError, AttributeError):
        message, type_ = body.decode(errors="replace")[:500] or f"engine answered {status}", \
            "invalid_request_error" if status < 500 else "server_error"
    code = {400: "invalid_request", 401: "invalid_api_key", 404: "not_found", 501: "not_supported",
            503: "model_unavailable"}.get(status, "upstream_error")
    return envelope(message, type_, code)
