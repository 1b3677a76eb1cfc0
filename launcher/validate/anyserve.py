"""The anyserve llama.cpp worker's YAML (`model_path`, `name`, loading keys, generation defaults, `port`)
read as a launcher config: converted key by key, validated like any config, its problems named with the
document's keys and lines. The document's fields and defaults are `LlamaCppConfig`'s (engines/llama_cpp_python.py).
"""
from __future__ import annotations

from dataclasses import fields

from ..config.source import Source
from ..engines.llama_cpp_python import LlamaCppConfig
from ..errors import did_you_mean

# document key -> launcher config path (grpc_port and openai_port are launcher's additions)
PATHS = {"model_path": ("model",), "name": ("model_alias",), "n_ctx": ("n_ctx",), "n_gpu_layers": ("n_gpu_layers",),
         "n_batch": ("n_batch",), "n_threads": ("n_threads",), "port": ("port",),
         "max_tokens": ("defaults", "max_tokens"), "temperature": ("defaults", "temperature"),
         "top_p": ("defaults", "top_p"), "top_k": ("defaults", "top_k"),
         "repeat_penalty": ("defaults", "repeat_penalty"), "stop": ("defaults", "stop"),
         "grpc_port": ("gateway", "grpc_port"), "openai_port": ("gateway", "openai_port")}


def is_anyserve(src: Source) -> bool:
    return isinstance(src.data, dict) and "model_path" in src.data and "model" not in src.data


def document_defaults() -> dict:
    """The document's defaults for what a file leaves out (the worker's own LlamaCppConfig)."""
    base = LlamaCppConfig()
    return {f.name: getattr(base, f.name) for f in fields(LlamaCppConfig)
            if f.name in PATHS and f.name != "name" and getattr(base, f.name) not in (None, [])}


def gpu_layers(value):
    """The document's -1 means every layer ("-1 表示全部"); llama-server reads -1 as `auto`."""
    return "all" if value == -1 else value


def from_anyserve(src: Source) -> Source:
    """A Source in launcher's keys whose problems point at the document's keys and lines."""
    out = Source(src.file, {}, problems=list(src.problems))
    data = {**document_defaults(), **src.data}
    for key, value in data.items():
        if key not in PATHS:
            hint = did_you_mean(key, PATHS) or f"the keys of this format: {', '.join(PATHS)}"
            out.problems.append(src.problem((key,), f"unknown key {key!r}", hint=hint))
            continue
        path = PATHS[key]
        node = out.data
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = gpu_layers(value) if key == "n_gpu_layers" else value
        if (key,) in src.lines:
            out.lines[path] = src.lines[(key,)]
        out.renamed[path] = (key,)
    return out
