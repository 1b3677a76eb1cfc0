"""The text-generation inputs and outputs of KServe v2 as the anyserve llama.cpp worker document names them:
one table that metadata, decoding, routing and the API docs all read."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KServeInput:
    name: str
    kind: str          # "text", "int", "float", "texts": what datatypes it takes
    datatype: str      # what the model metadata announces
    shape: tuple[int, ...]
    default: object    # the anyserve llama.cpp worker's default (000, 支持的输入参数)


# The one table of inputs: metadata, decoding and defaults all read it.
INPUTS = (
    KServeInput("prompt", "text", "BYTES", (1,), None),
    KServeInput("text_input", "text", "BYTES", (1,), None),
    KServeInput("max_tokens", "int", "INT64", (1,), 256),
    KServeInput("temperature", "float", "FP32", (1,), 0.7),
    KServeInput("top_p", "float", "FP32", (1,), 0.95),
    KServeInput("top_k", "int", "INT64", (1,), 40),
    KServeInput("repeat_penalty", "float", "FP32", (1,), 1.1),
    KServeInput("stop", "texts", "BYTES", (-1,), ()),
)
OUTPUTS = (("text_output", "BYTES"), ("finish_reason", "BYTES"))
BY_NAME = {i.name: i for i in INPUTS}
PROMPTS = ("prompt", "text_input")
PARAMETERS = tuple(i.name for i in INPUTS if i.name not in PROMPTS)
# llama-server sampling fields a request's `parameters` may add (never the prompt, stream or model)
ENGINE_EXTRAS = ("ignore_eos", "seed", "min_p", "typical_p", "presence_penalty", "frequency_penalty",
                 "repeat_last_n", "grammar")
DOCUMENT_DEFAULTS = {i.name: list(i.default) if isinstance(i.default, tuple) else i.default
                     for i in INPUTS if i.default is not None}
