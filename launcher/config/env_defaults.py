"""The Llama Switch document's `.env` names, read from the environment (else its .env file, dotenv_file.py) as
defaults the config overrides.

    MODELS_DIR -> models_dir   SERVER_PORT -> port   GPU_LAYERS -> n_gpu_layers
    LLAMA_SERVER_PATH, LLAMA_BENCH_PATH -> the llama-server / llama-bench programs (binaries.py)

Each value is checked like the key it fills; `origins` records where every one of them came from, so
`launch plan` can say it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import yaml

from .dotenv_file import settings
from .source import Source

CONFIG_DEFAULTS = (("MODELS_DIR", "models_dir"), ("SERVER_PORT", "port"), ("GPU_LAYERS", "n_gpu_layers"))
TOOL_DEFAULTS = (("LLAMA_SERVER_PATH", "llama-server"), ("LLAMA_BENCH_PATH", "llama-bench"))


@dataclass(frozen=True)
class Origin:
    env_name: str
    setting: str
    value: str
    source: str      # "the environment", "<file>:<line>", "launcher's build", "default", ...


def apply_env_defaults(src: Source, env: Mapping[str, str]) -> list[Origin]:
    """Fill the document's keys the config leaves out from the environment or the .env file; say where each
    came from."""
    origins = []
    if not isinstance(src.data, dict):
        return origins
    given = settings(tuple(name for name, _ in CONFIG_DEFAULTS), env)
    for name, key in CONFIG_DEFAULTS:
        if key in src.data:
            line = src.where((key,))[0]
            origins.append(Origin(name, key, str(src.data[key]), f"{src.file}:{line}"))
        elif name in given:
            value = _typed(given[name].value)
            src.data[key] = value
            src.from_env[(key,)] = name if given[name].source == "the environment" else f"{name}, {given[name].source}"
            origins.append(Origin(name, key, str(value), given[name].source))
        else:
            origins.append(Origin(name, key, "-", "not set"))
    return origins


def _typed(text: str):
    """`8080` is a number, `auto` a word: as YAML would read the value written in a config."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (int, float, str)) and not isinstance(value, bool) else text
