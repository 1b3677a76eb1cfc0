"""Model inheritance: each `models` item is the top-level keys overridden by the item's own.

Checks and the conversion to typed objects both see a model through a `ModelView`: its merged
data, and where each key is written, so a problem points at the item if the key is there,
else at the top level.
"""
from __future__ import annotations

from typing import Any

from .problems import Problem
from .schema import MODEL_SECTIONS
from .source import Source

# Keys of the deployment as a whole: never inherited by a model.
GLOBAL_KEYS = ("port", "hostname", "gateway", "build", "models", "models_dir", "workers")


def get(data: Any, *path: str, kind: type | tuple = object) -> Any:
    """data[path...] if every step exists and the value is of `kind` (bool never counts as int)."""
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data if isinstance(data, kind) and not (kind is int and isinstance(data, bool)) else None


def merged(top: dict, item: dict) -> dict:
    """An item's settings: top-level keys it does not set, sections merged key by key."""
    out = {k: v for k, v in top.items() if k not in GLOBAL_KEYS and k not in MODEL_SECTIONS}
    out.update({k: v for k, v in item.items() if k not in MODEL_SECTIONS})
    for sec in MODEL_SECTIONS:
        a, b = top.get(sec), item.get(sec)
        if isinstance(a, dict) or isinstance(b, dict):
            out[sec] = {**(a if isinstance(a, dict) else {}), **(b if isinstance(b, dict) else {})}
    return out


class ModelView:
    """One model as checks see it: merged data, and problems located where the key is written."""

    def __init__(self, src: Source, data: dict, item: dict | None = None, index: int | None = None):
        self.src, self.data, self.item, self.index = src, data, item, index

    def get(self, *path: str, kind: type | tuple = object) -> Any:
        return get(self.data, *path, kind=kind)

    def locate(self, path: tuple) -> tuple:
        if self.item is None:
            return path
        if _has(self.item, path):
            return ("models", self.index) + tuple(path)
        if _has(self.src.data, path):
            return path
        return ("models", self.index)  # neither: the item itself

    def problem(self, path: tuple, message: str, **kw) -> Problem:
        return self.src.problem(self.locate(tuple(path)), message, **kw)


def _has(data: Any, path: tuple) -> bool:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True


def model_views(src: Source) -> list[ModelView]:
    d = src.data if isinstance(src.data, dict) else {}
    items = d.get("models")
    if isinstance(items, list):
        return [ModelView(src, merged(d, it), it, i) for i, it in enumerate(items) if isinstance(it, dict)]
    if "model" not in d and "workers" in d:
        return []  # workers only
    return [ModelView(src, d)]
