"""What must exist before any process starts: the llama.cpp build (built if missing), the binaries a
plan names, and the assembled embedded models."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .binaries import Binaries, env_tools, resolve_binaries
from .bindings import check_bindings
from .config.model import Config
from .engines import PYTHON_WORKER_KIND, engine_for
from .engines.programs import LLAMA_SERVER
from .models.embedded import ensure
from .toolchain import ensure_build, request_for


def prepare_binaries(config: Config, quiet: bool = False) -> Binaries:
    """Build llama.cpp if the plan needs launcher's own build and it is not cached yet."""
    own_server = LLAMA_SERVER not in env_tools()  # LLAMA_SERVER_PATH names another llama-server
    engines = [engine_for(s) for s in config.models]
    own_build_needed = any((not s.engine.binary and own_server) or s.parallel.mode == "rpc" or e.own_build
                           for s, e in zip(config.models, engines)) \
        or any(PYTHON_WORKER_KIND.needs_own_build(w) for w in config.workers)
    if not own_build_needed:
        binary = next((s.engine.binary for s in config.models if s.engine.binary), None)
        return resolve_binaries(config, bin_dir=Path(binary).parent if binary else None)
    tree, _ = ensure_build(request_for(config), quiet=quiet)
    binaries = resolve_binaries(config, bin_dir=tree.bin_dir)
    if any(e.bindings for e in engines):
        binaries = replace(binaries, bindings_env=tuple(check_bindings(tree).items()))
    return binaries


def ensure_models(config: Config) -> None:
    for spec in config.models:
        if spec.is_embedded:
            ensure(spec.embedded_name)
