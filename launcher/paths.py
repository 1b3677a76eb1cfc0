"""Where launcher keeps its caches: builds, sources, assembled models (XDG, overridable)."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$LAUNCHER_CACHE_DIR, else $XDG_CACHE_HOME/launcher, else ~/.cache/launcher."""
    explicit = os.environ.get("LAUNCHER_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "launcher"


def models_dir() -> Path:
    return cache_dir() / "models"


def builds_dir() -> Path:
    return cache_dir() / "builds"


def sources_dir() -> Path:
    return cache_dir() / "sources"
