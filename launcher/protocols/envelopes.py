"""Error answers: every non-2xx answer in its API family's envelope, chosen by path in one place.

    OpenAI      /v1 and anything else:  {"error": {"message", "type", "param", "code"}}
    management  /api/v1:                {"success": false, "message", "data": null, "error": "...", "code"}
    KServe v2   /v2:                    {"error": "message"}

Routes raise the APIError subclasses of launcher/errors.py; FastAPI's own 404, 405, 422 and an
unexpected exception (500, logged with its traceback) are mapped to them and rendered the same way.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import APIError, BadRequest, InternalError, MethodNotAllowed, NotFound
from .sse import OPENAI_STREAM

log = logging.getLogger("launcher.gateway")


def openai_error(message: str, type_: str, code: str, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _openai_body(exc: APIError) -> dict:
    return openai_error(exc.message, exc.type, exc.code, exc.param)


# The Llama Switch document's envelope: `message` says what failed, `error` is the detail string (always a
# string: "" on success). `code` (machine-readable) and `param` are launcher's additions.
_SUMMARIES = {400: "Invalid request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
              405: "Method not allowed", 409: "Conflict", 413: "Request too large", 429: "Too many requests",
              500: "Internal error", 502: "Engine error",
              503: "Unavailable"}


def _management_body(exc: APIError) -> dict:
    return {"success": False, "message": _SUMMARIES.get(exc.status, "Request failed"), "data": None,
            "error": exc.message, "code": exc.code, "param": exc.param}


@dataclass(frozen=True)
class Family:
    name: str
    prefix: str
    body: Callable[[APIError], dict]


# Anthropic's error types by status (its API reference, "Errors").
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
                    502: "api_error", 503: "overloaded_error", 529: "overloaded_error"}


def _anthropic_body(exc: APIError) -> dict:
    kind = _ANTHROPIC_TYPES.get(exc.status, "invalid_request_error" if exc.status < 500 else "api_error")
    return {"type": "error", "error": {"type": kind, "message": exc.message}}


MANAGEMENT = Family("management", "/api/v1", _management_body)
ANTHROPIC = Family("anthropic", "/v1/messages", _anthropic_body)
KSERVE = Family("kserve", "/v2", lambda exc: {"error": exc.message})
OPENAI = Family("openai", "/", _openai_body)
FAMILIES = (MANAGEMENT, KSERVE, ANTHROPIC, OPENAI)  # most specific first; OpenAI's is the default


def family_for(path: str) -> Family:
    return next(f for f in FAMILIES if f.prefix == "/" or path == f.prefix or path.startswith(f.prefix + "/"))


def error_response(path: str, exc: APIError) -> JSONResponse:
    return JSONResponse(family_for(path).body(exc), status_code=exc.status, headers=exc.headers)


def from_http_exception(request: Request, exc: StarletteHTTPException) -> APIError:
    """Starlette's routing errors as launcher's own."""
    if exc.status_code == 404:
        return NotFound(f"no route {request.method} {request.url.path}")
    if exc.status_code == 405:
        return MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}", headers=exc.headers)
    err = APIError(str(exc.detail), headers=exc.headers)
    err.status, err.code = exc.status_code, "http_error"
    err.type = "invalid_request_error" if exc.status_code < 500 else "server_error"
    return err


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError):
        return error_response(request.url.path, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error_response(request.url.path, BadRequest(f"{where}: {first.get('msg', 'invalid request')}"
                                                           if where else first.get("msg", "invalid request"),
                                                           param=where or None))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return error_response(request.url.path, from_http_exception(request, exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(request.url.path, InternalError("internal error in the gateway"))


def sse_error(message: str, code: str = "upstream_error") -> bytes:
    """An error after OpenAI SSE headers went out: an error event, then [DONE] (as vLLM does)."""
    return OPENAI_STREAM.error_event(message, code)


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
    if type_ == "exceed_context_size_error":  # llama-server's; OpenAI's name for it is this code
        type_, code = "invalid_request_error", "context_length_exceeded"
    return openai_error(message, type_, code)
