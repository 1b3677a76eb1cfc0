"""The anyserve llama.cpp worker's YAML (`model_path`, `name`, loading keys, generation defaults, `port`)
read as a launcher config: converted key by key, validated like any config, its problems named with the
document's keys and lines. The document's fields and defaults are `LlamaCppConfig`'s (engines/llama_cpp_python.py).

Its Phase-3 form serves several models: `models: [{path, name, n_gpu_layers, ...}]`, each entry taking the
per-model keys, the file's top level the rest (`port`).
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


PER_MODEL = {"path": ("model",), **{k: v for k, v in PATHS.items() if k not in ("model_path", "port", "grpc_port",
                                                                                 "openai_port")}}


def is_anyserve(src: Source) -> bool:
    if not isinstance(src.data, dict) or "model" in src.data:
        return False
    models = src.data.get("models")
    several = isinstance(models, list) and models and all(isinstance(m, dict) and "path" in m and "model" not in m
                                                          for m in models)
    return "model_path" in src.data or bool(several)


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
    defaults = document_defaults()
    several = "models" in src.data and "model_path" not in src.data
    top = {k: v for k, v in defaults.items() if k in ("port",)} if several else defaults
    _convert(src, out, {**top, **src.data}, (), (), PATHS, skip=("models",) if several else ())
    if several:
        out.data["models"] = []
        per_model = {k: v for k, v in defaults.items() if k in PER_MODEL}
        for i, entry in enumerate(src.data["models"]):
            out.data["models"].append({})
            for path in (("models",), ("models", i)):
                if path in src.lines:
                    out.lines[path] = src.lines[path]
            _convert(src, out, {**per_model, **entry}, ("models", i), ("models", i), PER_MODEL)
    return out


def _convert(src: Source, out: Source, data: dict, where: tuple, into: tuple, paths: dict, skip=()) -> None:
    """Each document key of `data` (found at `where` in the file) to its launcher path under `into`."""
    for key, value in data.items():
        if key in skip:
            continue
        if key not in paths:
            hint = did_you_mean(key, paths) or f"the keys of this format: {', '.join(paths)}"
            out.problems.append(src.problem(where + (key,), f"unknown key {key!r}", hint=hint))
            continue
        if key == "n_ctx" and isinstance(value, int) and value < 1:  # the document's rule (launcher's 0 means
            out.problems.append(src.problem(where + (key,), "n_ctx must be positive", value=value,  # "the model's")
                                            hint="the context window in tokens, e.g. 4096"))
            continue
        path = into + paths[key]
        node = out.data
        for part in path[:-1]:
            node = node.setdefault(part, {}) if isinstance(part, str) else node[part]
        node[path[-1]] = gpu_layers(value) if key == "n_gpu_layers" else value
        if where + (key,) in src.lines:
            out.lines[path] = src.lines[where + (key,)]
        out.renamed[path] = where + (key,)
