"""The gateway's OpenAPI document: every request body and every answer, success and error, per route.

Routes read their bodies themselves (no pydantic validation on the hot path), so the bodies are
documented here as JSON Schema and attached with `openapi_extra`; `finish_openapi` adds to every
operation the errors of its API family (envelopes.py), the key it needs, and the served model names as
examples. A schema-valid request must never be refused for its shape: the fuzz test holds the gateway
to that (`tests/unit/test_fuzz_fake.py`, schemathesis).
"""
from __future__ import annotations

import warnings

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ..engines.llama_bench import SCHEMA as BENCHMARK_PARAMETERS
from ..protocols.kserve.inputs import INPUTS
from .routing import CAPABILITY_HEADER

JSON = "application/json"
SSE = "text/event-stream"
STRING = {"type": "string"}
OBJECT = {"type": "object"}


def body(schema: dict, description: str = "") -> dict:
    """`openapi_extra` of a route with a JSON body."""
    return {"requestBody": {"required": True, "description": description, "content": {JSON: {"schema": schema}}}}


def optional_body(schema: dict) -> dict:
    return {"requestBody": {"required": False, "content": {JSON: {"schema": schema}}}}


def ok(schema: dict = OBJECT, *, stream: dict | None = None, binary: bool = False, text: bool = False,
       description: str = "Success") -> dict:
    """`responses` of a route's success answer, in every media type it may have (`stream`: the schema of
    each server-sent event's data)."""
    content = {"text/plain": {"schema": STRING}} if text else {JSON: {"schema": schema}}
    if stream is not None:
        content[SSE] = {"schema": stream}
    if binary:
        content["application/octet-stream"] = {"schema": {"type": "string", "format": "binary"}}
    return {200: {"description": description, "content": content}}


# --- OpenAI ---------------------------------------------------------------------------------------
_SAMPLING = {
    "model": {"type": "string", "description": "A served model's name (alias, file name or stem); optional with "
                                               "one model, or with an X-Capability header"},
    "max_tokens": {"type": "integer", "minimum": 1, "description": "capped at the model's n_ctx"},
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "top_k": {"type": "integer", "minimum": 0},
    "repeat_penalty": {"type": "number", "minimum": 0},
    "seed": {"type": "integer"},
    "stream": {"type": "boolean", "description": "answer as server-sent events ending with data: [DONE]"},
    "stop": {"anyOf": [STRING, {"type": "array", "items": STRING, "maxItems": 4}]},
}
_MESSAGE = {"type": "object", "required": ["role", "content"],
            "properties": {"role": {"enum": ["system", "user", "assistant", "developer"]}, "content": STRING}}
CHAT = {"type": "object", "required": ["messages"], "description": "OpenAI's chat completion request (other "
        "llama-server fields pass through)", "properties": {
            "messages": {"type": "array", "minItems": 1, "items": _MESSAGE}, **_SAMPLING}}
COMPLETION = {"type": "object", "required": ["prompt"], "description": "OpenAI's completion request",
              "properties": {"prompt": {"anyOf": [STRING, {"type": "array", "items": STRING, "minItems": 1}]},
                             **_SAMPLING}}
EMBEDDING = {"type": "object", "required": ["input"], "description": "OpenAI's embedding request (needs "
             "`embeddings: true`)", "properties": {
                 "input": {"anyOf": [STRING, {"type": "array", "items": STRING, "minItems": 1}]},
                 "model": _SAMPLING["model"]}}
def sse_event(data: dict | None, description: str) -> dict:
    """One server-sent event (`data`, `event`): its data is JSON of `data`'s schema, or text when None."""
    data_schema = {"type": "string", "description": description}
    if data is not None:
        data_schema.update(contentMediaType=JSON, contentSchema=data)
    return {"type": "object", "required": ["data"], "properties": {"data": data_schema, "event": STRING}}


OPENAI_EVENT = sse_event(None, "a chunk (JSON), an error ({error: {...}}), then [DONE]")
CHAT_ANSWER = {"type": "object", "required": ["choices"], "properties": {"choices": {"type": "array"}}}
RESPONSES = {"type": "object", "required": ["input"], "description": "OpenAI's Responses API request (`input` a "
             "string or a list of items; `instructions`, `max_output_tokens`, `stream`, ...)",
             "properties": {"model": STRING, "input": {"anyOf": [STRING, {"type": "array"}]},
                            "instructions": STRING, "stream": {"type": "boolean"}}}
RESPONSE = {"type": "object", "required": ["output"], "properties": {"output": {"type": "array"}}}
RESPONSE_EVENT = sse_event({"type": "object", "required": ["type"]}, "named events: response.created, "
                           "response.output_text.delta, ..., response.completed (an error: event error)")

# --- Anthropic Messages ---------------------------------------------------------------------------------
MESSAGES = {"type": "object", "required": ["messages", "max_tokens"], "description": "Anthropic's Messages "
            "request", "properties": {"model": STRING, "messages": {"type": "array", "items": _MESSAGE},
                                      "max_tokens": {"type": "integer", "minimum": 1}, "system": {},
                                      "stream": {"type": "boolean"}}}
MESSAGE = {"type": "object", "required": ["type", "content"], "properties": {"type": {"const": "message"},
                                                                             "content": {"type": "array"}}}
ANTHROPIC_EVENT = sse_event({"type": "object", "required": ["type"]}, "named events: message_start, "
                            "content_block_start, content_block_delta, content_block_stop, message_delta, message_stop "
                            "(an error: event error)")
COUNT_TOKENS = {"type": "object", "required": ["messages"], "properties": {
    "model": STRING, "messages": {"type": "array", "items": _MESSAGE}, "system": {}}}
TOKEN_COUNT = {"type": "object", "required": ["input_tokens"], "properties": {"input_tokens": {"type": "integer"}}}

# --- llama-server's own routes ------------------------------------------------------------------------
LLAMA_EVENT = sse_event({"type": "object"}, "a chunk of llama-server's /completion answer (content, stop, ...)")

MODEL_LIST = {"type": "object", "required": ["object", "data"], "properties": {
    "object": {"const": "list"}, "data": {"type": "array", "items": {"type": "object", "required": ["id"]}}}}

# --- KServe v2 ------------------------------------------------------------------------------------
_JSON_TYPE = {"BYTES": STRING, "INT64": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
              "FP32": {"type": "number", "minimum": 0, "maximum": 3.4e38}}


def _tensor(name: str, datatype: str) -> dict:
    return {"type": "object", "required": ["name", "datatype", "shape", "data"], "additionalProperties": False,
            "properties": {"name": {"const": name}, "datatype": {"const": datatype}, "shape": {"const": [1]},
                           "data": {"type": "array", "minItems": 1, "maxItems": 1, "items": _JSON_TYPE[datatype]}}}


_TENSORS = [_tensor(i.name, i.datatype) for i in INPUTS]
INFER = {"type": "object", "required": ["inputs"], "additionalProperties": False,
         "description": "KServe v2 inference request; for a model: a `prompt` (or `text_input`) and the "
                        "generation inputs, in `data`, `contents` or binary form. A Python worker takes its "
                        "handlers' own tensors.",
         "properties": {
             "id": STRING,
             "inputs": {"type": "array", "minItems": 1, "items": {"anyOf": _TENSORS},
                        "contains": {"anyOf": _TENSORS[:2]}},
             "parameters": {"type": "object", "additionalProperties": False, "properties": {
                 "max_tokens": _JSON_TYPE["INT64"], "temperature": _JSON_TYPE["FP32"],
                 "binary_data_output": {"type": "boolean"}}},
             "outputs": {"type": "array", "items": {"type": "object", "required": ["name"],
                                                     "additionalProperties": False, "properties": {
                 "name": {"enum": ["text_output", "finish_reason"]},
                 "parameters": {"type": "object", "additionalProperties": False,
                                "properties": {"binary_data": {"type": "boolean"}}}}}}}}
INFER_ANSWER = {"type": "object", "required": ["model_name", "outputs"], "properties": {
    "model_name": STRING, "model_version": STRING, "id": STRING, "parameters": OBJECT,
    "outputs": {"type": "array", "items": {"type": "object", "required": ["name", "datatype", "shape"]}}}}
KSERVE_EVENT = sse_event({"type": "object", "required": ["error_message", "infer_response"]},
                         "one response per chunk; error_message set (and infer_response null) when it failed")
GENERATE_EVENT = sse_event({"type": "object"}, "{model_name, text_output, finish_reason}, or {error}")
REGISTER_EVENT = {"type": "object", "required": ["event", "data"], "properties": {
    "event": {"enum": ["registered", "heartbeat"]}, "data": {"type": "string", "contentMediaType": JSON}}}
GENERATE = {"type": "object", "required": ["text_input"], "additionalProperties": False,
            "description": "Triton's generate extension", "properties": {
                "text_input": STRING, "id": STRING,
                "parameters": {"type": "object", "additionalProperties": False, "properties": {
                    "max_tokens": _JSON_TYPE["INT64"], "temperature": _JSON_TYPE["FP32"],
                    "top_p": {"type": "number", "minimum": 0, "maximum": 1}}}}}
GENERATE_ANSWER = {"type": "object", "required": ["model_name", "text_output"], "properties": {
    "model_name": STRING, "text_output": STRING, "finish_reason": STRING}}
MODEL_METADATA = {"type": "object", "required": ["name", "versions", "platform", "inputs", "outputs"]}

# --- management (the Llama Switch API) -------------------------------------------------------------
# A .gguf file named relative to the models folder: no part may start with a dot (so never `..`).
MODEL_PATH = {"type": "string", "pattern": r"^[^/.\x00][^/\x00]*(/[^/.\x00][^/\x00]*)*\.gguf$",
              "description": "a .gguf file in the models folder (an absolute path inside it is accepted too)"}
SWITCH = {"type": "object", "required": ["model_path"], "properties": {
    "model_path": MODEL_PATH,
    "config": {"type": "object", "description": "Llama Switch config names, or launcher's model settings"}}}
STOP = {"type": "object", "properties": {"model_name": STRING}}
LOAD = {"type": "object", "required": ["model_name"], "properties": {"model_name": {"type": "string", "minLength": 1}}}
_WHICH = {"model_path": MODEL_PATH, "model_name": {"type": "string", "description": "a served model"}}
BENCHMARK = {"anyOf": [
    {"type": "object", "additionalProperties": False, "description": "the document's form",
     "properties": {**_WHICH, "config": BENCHMARK_PARAMETERS}},
    {"type": "object", "additionalProperties": False, "description": "launcher's flat form",
     "properties": {**_WHICH, **BENCHMARK_PARAMETERS["properties"]}}]}
CANCEL = {"type": "object", "required": ["task_id"], "properties": {"task_id": STRING}}


def envelope(data: dict | None = None) -> dict:
    return {"type": "object", "required": ["success", "message", "data", "error"], "properties": {
        "success": {"type": "boolean"}, "message": STRING, "error": STRING,
        "data": data or {}}}


# --- discovery ------------------------------------------------------------------------------------
REGISTER = {"type": "object", "required": ["replica_id", "endpoint", "capabilities"], "properties": {
    "replica_id": {"type": "string", "minLength": 1}, "endpoint": {"type": "string", "pattern": "^https?://"},
    "grpc_endpoint": STRING,
    "capabilities": {"type": "array", "items": {"type": "object", "minProperties": 1, "additionalProperties": {
        "type": ["string", "number", "boolean"]}}}}}
ROUTE = {"type": "object", "required": ["endpoint", "replica_id"], "properties": {
    "endpoint": STRING, "replica_id": STRING, "capabilities": {"type": "array"}}}

# --- operator --------------------------------------------------------------------------------------
DEVICES = {"type": "object", "required": ["read_at", "backends", "devices"], "properties": {
    "read_at": {"type": ["number", "null"]}, "backends": {"type": "array", "items": STRING},
    "devices": {"type": "object", "additionalProperties": {"type": "array", "items": {
        "type": "object", "required": ["id", "model_name", "healthy"]}}}}}

CONSOLE_EVENT = {"type": "object", "required": ["event", "data"], "properties": {
    "event": {"enum": ["snapshot", "models", "model", "request", "log", "config"]},
    "data": {"type": "string", "description": "JSON"}}}

# --- errors, per API family (envelopes.py) ---------------------------------------------------------
_OPENAI_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["message", "type", "code"],
    "properties": {"message": STRING, "type": STRING, "code": STRING, "param": {"type": ["string", "null"]}}}}}
_KSERVE_ERROR = {"type": "object", "required": ["error"], "properties": {"error": STRING}}
_ANTHROPIC_ERROR = {"type": "object", "required": ["type", "error"], "properties": {"type": {"const": "error"},
                    "error": {"type": "object", "required": ["type", "message"],
                              "properties": {"type": STRING, "message": STRING}}}}
_MANAGEMENT_ERROR = {"type": "object", "required": ["success", "message", "data", "error"], "properties": {
    "success": {"const": False}, "message": STRING, "error": STRING, "data": {"type": "null"}, "code": STRING}}
ERRORS = {400: "invalid request", 401: "missing or wrong API key", 403: "forbidden (management disabled, "
          "admin key needed)", 404: "no such model, capability, task or file", 405: "method not allowed",
          408: "the request body stalled (gateway.body_timeout)", 409: "conflict",
          413: "body larger than gateway.max_body_bytes", 429: "queue full (gateway.max_queue); see Retry-After",
          500: "internal error (a bug, or a worker's handler raised)", 502: "the engine failed",
          503: "model loading, restarting, stopped or failed, or the gateway draining; see Retry-After"}
PUBLIC = {"/health", "/ready", "/v2/health/live", "/v2/health/ready"}
CAPABILITY_NOTE = (f"\n\nA `{CAPABILITY_HEADER}: type=chat,lang=zh` header routes by capability (README: "
                   "capabilities and workers).")


def _error_schema(path: str) -> dict:
    if path.startswith("/v2"):
        return _KSERVE_ERROR
    if path.startswith("/v1/messages"):
        return _ANTHROPIC_ERROR
    if path.startswith("/api/v1"):
        return _MANAGEMENT_ERROR
    return _OPENAI_ERROR


def finish_openapi(app: FastAPI, has_keys: bool, model_names: list[str]) -> dict:
    with warnings.catch_warnings():  # a route of several methods (/upstream) shares one id: made unique below
        warnings.filterwarnings("ignore", "Duplicate Operation ID", UserWarning)
        doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    seen: set[str] = set()
    if has_keys:
        doc.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}}
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            if op.get("operationId") in seen:
                op["operationId"] = f"{op['operationId']}_{method}"
            seen.add(op.get("operationId"))
            responses = op.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's validation answer: launcher answers 400 instead
            error = {"content": {JSON: {"schema": _error_schema(path)}}}
            for status, why in ERRORS.items():
                responses.setdefault(str(status), {"description": why, **error})
            if has_keys and path not in PUBLIC:
                op["security"] = [{"bearer": []}, {"apiKey": []}]
            for param in op.get("parameters", []):
                if param["name"] == "name" and model_names:
                    param["schema"]["examples"] = model_names
                elif param["name"] == "version":
                    param["schema"]["examples"] = ["1"]
                elif param["name"] == "type" and path == "/route":
                    param["schema"]["examples"] = ["chat", "completion"]
            if "{version}" not in path:  # the handler's optional `version` is a path part, not a query
                op["parameters"] = [p for p in op.get("parameters", []) if p["name"] != "version"]
                if not op["parameters"]:
                    del op["parameters"]
            if path.startswith(("/v1/chat", "/v1/completions", "/v1/embeddings", "/v1/responses", "/v1/messages",
                                "/completion", "/infill", "/v2/models")):
                op["description"] = (op.get("description") or "") + CAPABILITY_NOTE
    doc.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
    doc.get("components", {}).get("schemas", {}).pop("ValidationError", None)
    return doc
