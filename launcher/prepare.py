"""What must exist before any process starts: the llama.cpp build (built if missing), the binaries a
plan names, and the assembled embedded models."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .binaries import Binaries, resolve_binaries
from .bindings import check_bindings
from .build import ensure_build, request_for
from .config.model import Config
from .models.embedded import ensure


def prepare_binaries(config: Config, quiet: bool = False) -> Binaries:
    """Build llama.cpp if the plan needs launcher's own build and it is not cached yet."""
    own_build_needed = any(not s.engine.binary or s.parallel.mode == "rpc" or s.engine.kind == "llama-cpp-python"
                           for s in config.models)
    if not own_build_needed:
        return resolve_binaries(config, bin_dir=Path(config.models[0].engine.binary).parent)
    tree, _ = ensure_build(request_for(config), quiet=quiet)
    binaries = resolve_binaries(config, bin_dir=tree.bin_dir)
    if any(s.engine.kind == "llama-cpp-python" for s in config.models):
        binaries = replace(binaries, bindings_env=tuple(check_bindings(tree).items()))
    return binaries


def ensure_models(config: Config) -> None:
    for spec in config.models:
        if spec.is_embedded:
            ensure(spec.embedded_name)
