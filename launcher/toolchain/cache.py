"""Builds live in the cache, one folder per key: a hash of source, backend, flags and compiler.

A second build with the same inputs finds the folder (with a passed smoke test) and does nothing.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from ..paths import builds_dir
from .recipe import BuildRequest, Recipe

META = "meta.json"


@dataclass(frozen=True)
class BuiltTree:
    key: str
    path: Path
    backend: str
    source: str
    source_id: str
    created: str
    size_bytes: int
    targets: tuple[str, ...]

    @property
    def bin_dir(self) -> Path:
        return self.path / "build" / "bin"

    def binary(self, name: str) -> Path:
        return self.bin_dir / name


def compiler_identity(backend: str) -> str:
    parts = []
    tools = [os.environ.get("CC", "cc"), os.environ.get("CXX", "c++")] + (["nvcc"] if backend == "cuda" else [])
    for tool in tools:
        try:
            out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=20).stdout
            parts.append(out.splitlines()[0] if out else tool)
        except (OSError, subprocess.TimeoutExpired):
            parts.append(f"{tool}: missing")
    return " | ".join(parts)


def build_key(req: BuildRequest, rec: Recipe, compiler: str) -> str:
    """Everything that changes the binaries, and nothing that does not (paths of the cache itself)."""
    # Paths (source, build dir, the preset file) are not inputs: the preset's content is, below.
    inputs = [Path(p).read_text() for p in rec.inputs]
    blob = json.dumps({"source": req.source_id, "backend": req.backend, "configure": ["cmake", *rec.options],
                       "targets": rec.targets, "inputs": inputs, "compiler": compiler}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load(path: Path) -> BuiltTree | None:
    try:
        meta = json.loads((path / META).read_text())
    except (OSError, ValueError):
        return None
    if not meta.get("smoke_ok"):
        return None
    return BuiltTree(meta["key"], path, meta["backend"], meta["source"], meta["source_id"], meta["created"],
                     meta["size_bytes"], tuple(meta["targets"]))


def record(path: Path, key: str, req: BuildRequest, rec: Recipe) -> BuiltTree:
    size = sum(f.stat().st_size for f in (path / "build").rglob("*") if f.is_file())
    tree = BuiltTree(key, path, req.backend, str(req.source), req.source_id,
                     _dt.datetime.now().isoformat(timespec="seconds"), size, rec.targets)
    data = asdict(tree) | {"path": str(path), "smoke_ok": True, "configure": list(rec.configure)}
    tmp = path / (META + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path / META)
    return tree


def all_builds() -> list[BuiltTree]:
    root = builds_dir()
    if not root.is_dir():
        return []
    found = [load(p) for p in sorted(root.iterdir()) if p.is_dir()]
    return sorted((b for b in found if b), key=lambda b: b.created, reverse=True)

