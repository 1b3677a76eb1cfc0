"""Text generation over KServe v2, independent of REST or gRPC: the anyserve document's inputs in one
table, their decoding into an engine call, and the engine's answer back as text, finish reason and
token counts.

The engine is llama-server (or llama-cpp-python's server); a KServe call becomes a `/v1/completions`
call on it, so every engine kind and parallel layout answers both protocols through one path.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from ...errors import BadRequest
from ...protocols.kserve.inputs import BY_NAME, DOCUMENT_DEFAULTS, ENGINE_EXTRAS, PARAMETERS
from ...protocols.kserve.tensors import FLOAT, INTEGER, Tensor
from ..limits import cap_max_tokens
from ..param_rules import apply_rules
from ..proxy import Forwarder, engine_error

COMPLETIONS = "/v1/completions"


@dataclass
class GenerationCall:
    prompts: list[str]
    params: dict      # /v1/completions fields: max_tokens, temperature, top_p, top_k, repeat_penalty, stop


@dataclass
class Completion:
    text: str
    finish_reason: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(slots=True)
class Piece:
    text: str
    finish_reason: str | None = None      # set on the last piece
    usage: dict | None = None
    raw: str | None = None                # the text as the engine's JSON string literal, quotes included


def _value(tensor: Tensor):
    spec = BY_NAME[tensor.name]
    ok = {"text": tensor.datatype == "BYTES", "texts": tensor.datatype == "BYTES",
          "int": tensor.datatype in INTEGER, "float": tensor.datatype in FLOAT | INTEGER}[spec.kind]
    if not ok:
        raise BadRequest(f"input {tensor.name!r} must be {spec.datatype}, got {tensor.datatype}", param=tensor.name)
    if not tensor.values:
        raise BadRequest(f"input {tensor.name!r} has no elements", param=tensor.name)
    if spec.kind in ("text", "texts"):
        return [v.decode(errors="replace") for v in tensor.values]
    return int(tensor.values[0]) if spec.kind == "int" else float(tensor.values[0])


def decode_call(tensors: list[Tensor], parameters: dict, config_defaults: dict) -> GenerationCall:
    """Inputs override request parameters, which override the config's `defaults:`, which override the
    document's defaults. A batch (`prompt` with shape [N]) is N prompts with the same settings."""
    given: dict = {}
    for t in tensors:
        if t.name not in BY_NAME:
            raise BadRequest(f"unexpected input {t.name!r}; this model takes {', '.join(BY_NAME)}", param=t.name)
        given[t.name] = _value(t)
    prompts = given.get("prompt") or given.get("text_input")
    if not prompts:
        raise BadRequest("missing input 'prompt' (or 'text_input'), a BYTES tensor", param="prompt")
    return GenerationCall(prompts, settings({**parameters, **given}, config_defaults))


def settings(given: dict, config_defaults: dict) -> dict:
    """The engine call's settings: given ones, else the config's `defaults:`, else the document's."""
    params = {**DOCUMENT_DEFAULTS, **{k: v for k, v in config_defaults.items() if k in PARAMETERS},
              **{k: v for k, v in given.items() if k in PARAMETERS or k in ENGINE_EXTRAS}}
    if isinstance(params.get("stop"), str):
        params["stop"] = [params["stop"]]
    return params


def decode_generate(body: dict, config_defaults: dict) -> GenerationCall:
    """Triton's generate extension: `{"text_input": ..., "parameters": {...}}`, inputs also as top-level keys."""
    text = body.get("text_input", body.get("prompt"))
    if not isinstance(text, str):
        raise BadRequest("`text_input` must be a string", param="text_input")
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise BadRequest("`parameters` must be an object", param="parameters")
    top = {k: v for k, v in body.items() if k in PARAMETERS or k in ENGINE_EXTRAS}
    unknown = set(body) - set(top) - {"text_input", "prompt", "parameters", "id"}
    if unknown:
        raise BadRequest(f"unexpected field(s) {', '.join(sorted(unknown))}", param=sorted(unknown)[0])
    return GenerationCall([text], settings({**parameters, **top}, config_defaults))


def _payload(prompt: str, params: dict, stream: bool, runner) -> dict:
    payload = {"prompt": prompt, **params, "stream": stream}
    apply_rules(payload, runner.spec)   # the model's set_params / strip_params, as for every family
    cap_max_tokens(payload, runner.spec.params.n_ctx)
    if stream:
        payload["stream_options"] = {"include_usage": True}  # token counts ride on the last chunk
    return payload


async def complete(forwarder: Forwarder, runner, prompt: str, params: dict) -> Completion:
    body = await forwarder.call_json(runner, COMPLETIONS, _payload(prompt, params, False, runner))
    choice = (body.get("choices") or [{}])[0]
    usage = body.get("usage") or {}
    return Completion(choice.get("text") or "", choice.get("finish_reason") or "stop",
                      usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))


async def open_engine_stream(forwarder: Forwarder, runner, prompt: str, params: dict):
    """Open the engine's stream now (so a full queue or a dead engine is an error status, not an event):
    (the upstream, the response). The caller closes the response and gives the upstream back."""
    body = json.dumps(_payload(prompt, params, True, runner)).encode()
    up, resp = await forwarder.open(runner, COMPLETIONS, body, streamed=True)
    if resp.status_code >= 400:
        try:
            raise engine_error(resp.status_code, await resp.aread())
        finally:
            await resp.aclose()
            forwarder.release(runner, up)
    return up, resp
