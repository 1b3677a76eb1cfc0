"""`launch doctor [--config X]`: the host checked in one command, each finding ok, warn or error with its
fix. The accelerator first (ascend.py; NVIDIA's in host.py), then MPI, the compiler, limits and launcher's
cached build; with a config, its problems on this machine (a K-quant on CANN comes with the exact
`launch quantize` line) and each model's memory plan."""
from __future__ import annotations

import os
from typing import Mapping

from ..devices import lookup, machine_backend
from ..errors import ConfigError
from ..plan.here import memory_plan
from ..units import show_mib
from ..validate import load_config
from .ascend import ascend_findings
from .findings import ERROR, OK, WARN, Finding, render
from .host import build_findings, compiler_findings, cuda_findings, limit_findings, mpi_findings

__all__ = ["examine", "render", "Finding", "OK", "WARN", "ERROR"]
MiB = 2**20


def config_findings(path: str) -> tuple[list[Finding], object | None]:
    try:
        result = load_config(path)
    except ConfigError as exc:
        return [Finding(WARN if p.warning else ERROR, f"{p.file}:{p.line}", p.message, p.hint)
                for p in exc.problems], None
    out = [Finding(WARN, f"{p.file}:{p.line}", p.message, p.hint) for p in result.warnings]
    out.append(Finding(OK, "config", f"{path}: valid on this machine"))
    devices_for = lookup()
    for spec in result.config.models:
        plan = memory_plan(spec, devices_for(spec.devices.backend))
        if plan is None:
            out.append(Finding(WARN, f"memory {spec.name}", "no memory plan: the model's header or the devices' "
                               "sizes are not known here"))
            continue
        rows = [r for r in plan.rows if r.device_id is not None] or plan.rows
        shown = "; ".join(f"{r.name} {show_mib(r.total / MiB)}" + (f" of {show_mib(r.capacity / MiB)} ({r.use:.0%})"
                                                                    if r.capacity else "") for r in rows)
        out.append(Finding(OK, f"memory {spec.name}", shown))
    return out, result.config


def examine(config_path: str | None = None, env: Mapping[str, str] | None = None) -> tuple[str, list[Finding]]:
    """(title, findings) for this host, and for the config when one is given."""
    env = os.environ if env is None else env
    choice = machine_backend(env=env)
    found, config = config_findings(config_path) if config_path else ([], None)
    models = config.models if config else ()
    soc = config.build.soc_type if config else None
    hccl = any(m.parallel.hccl is not None for m in models)
    fork = any(m.engine.flavor == "ascend-fork" for m in models)
    mlock = any(m.params.use_mlock for m in models)
    if choice.backend == "cann":
        title = f"Ascend host ({choice.reason})"
        head = ascend_findings(env, soc, hccl)
    elif choice.backend == "cuda":
        title = f"CUDA host ({choice.reason})"
        head = cuda_findings()
    else:
        title = "CPU-only host"
        head = [Finding(OK, "accelerator", "none: no Ascend NPU (npu-smi, /dev/davinci*, CANN environment) and no "
                        "NVIDIA GPU (nvidia-smi) here, so launcher runs models on the CPU")]
    rest = mpi_findings(fork) + compiler_findings(env) + limit_findings(mlock) + build_findings(choice.backend)
    return title, head + rest + found


def exit_code(findings: list[Finding]) -> int:
    return 1 if any(f.status == ERROR for f in findings) else 0
