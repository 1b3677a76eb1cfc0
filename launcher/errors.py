"""Every exception launcher raises on purpose. Library code raises these; `cli` turns them into exit
codes and the gateway into HTTP answers (each API family in its own envelope, see protocols/envelopes.py).

LauncherError                  anything the user can fix; printed without a traceback (exit 1)
 +-- ConfigError               the config has problems (exit 2); carries every Problem
 +-- BuildError                llama.cpp could not be built or failed its smoke test
 +-- PlanError                 the config is valid but cannot run here (missing binary, no devices)
 +-- StartError                a process did not come up (port taken, crashed while loading)
 +-- APIError                  a request the gateway refuses or cannot serve: status, type, code, param
      +-- BadRequest           400 invalid_request
      +-- Unauthorized         401 invalid_api_key
      +-- Forbidden            403 permission_denied
      |    +-- ManagementDisabled   403 management_disabled
      +-- NotFound             404 not_found (no such route, task, file)
      |    +-- ModelNotFound   404 model_not_found
      |    +-- CapabilityNotFound  404 capability_not_found (lists what is available)
      +-- MethodNotAllowed     405 method_not_allowed (with Allow)
      +-- Conflict             409 conflict
      +-- PayloadTooLarge      413 body_too_large (gateway.max_body_bytes)
      +-- QueueFull            429 queue_full (gateway.max_queue requests already wait; with Retry-After)
      +-- InternalError        500 internal_error (a bug: logged with its traceback)
      +-- UpstreamError        502 upstream_error
      +-- EngineUnavailable    503 model_unavailable (with Retry-After)
           +-- ModelsBusy      503 models_busy (every loaded model is busy: none can be unloaded)
           +-- ModelStopped    503 model_stopped (stopped through /api/v1 until switched to again)
           +-- ShuttingDown    503 shutting_down (draining: finishing what runs, taking nothing new)
"""
from __future__ import annotations

import difflib


def did_you_mean(word: str, choices) -> str:
    """The hint for a misspelt name: "did you mean 'x'?", or "" when nothing is close."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


class LauncherError(Exception):
    exit_code = 1


class ConfigError(LauncherError):
    exit_code = 2

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(p.format() for p in self.problems))


class BuildError(LauncherError):
    def __init__(self, message: str, log_tail: str = "", log_path: str = ""):
        self.log_tail, self.log_path = log_tail, log_path
        super().__init__(message)


class PlanError(LauncherError):
    pass


class StartError(LauncherError):
    pass


class APIError(LauncherError):
    """An HTTP error answer. OpenAI-style `type` and a string `code` travel with it to every envelope."""
    status = 500
    type = "server_error"
    code = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message, self.param, self.headers = message, param, dict(headers or {})


class BadRequest(APIError):
    status, type, code = 400, "invalid_request_error", "invalid_request"


class Unauthorized(APIError):
    status, type, code = 401, "authentication_error", "invalid_api_key"


class Forbidden(APIError):
    status, type, code = 403, "permission_error", "permission_denied"


class ManagementDisabled(Forbidden):
    code = "management_disabled"


class NotFound(APIError):
    status, type, code = 404, "invalid_request_error", "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class CapabilityNotFound(NotFound):
    code = "capability_not_found"


class MethodNotAllowed(APIError):
    status, type, code = 405, "invalid_request_error", "method_not_allowed"


class Conflict(APIError):
    status, type, code = 409, "invalid_request_error", "conflict"


class InternalError(APIError):
    status, type, code = 500, "server_error", "internal_error"


class UpstreamError(APIError):
    status, type, code = 502, "server_error", "upstream_error"


class EngineUnavailable(APIError):
    status, type, code = 503, "server_error", "model_unavailable"

    def __init__(self, message: str, retry_after: int = 2, *, param: str | None = None):
        super().__init__(message, param=param, headers={"Retry-After": str(retry_after)})


class PayloadTooLarge(APIError):
    status, type, code = 413, "invalid_request_error", "body_too_large"


class QueueFull(APIError):
    status, type, code = 429, "rate_limit_error", "queue_full"

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class ModelsBusy(EngineUnavailable):
    code = "models_busy"


class ShuttingDown(EngineUnavailable):
    code = "shutting_down"


class ModelStopped(EngineUnavailable):
    code = "model_stopped"
