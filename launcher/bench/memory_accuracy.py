"""`launch bench memory`: the memory plan's estimate against the buffer sizes llama-server logs.

For each setting (n_ctx, KV cache type, flash attention, slots) it plans the model the way `launch`
would, starts that exact llama-server command with load logging on, reads its `model buffer`, `KV
buffer` and `compute buffer` lines, stops it, and prints estimate / logged per buffer.
"""
from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..memory.estimate import MiB
from ..models.embedded import ensure
from ..plan import plan_for_here
from ..validate import load_source

CASES = ({"n_ctx": 2048}, {"n_ctx": 8192}, {"n_ctx": 32768},
         {"n_ctx": 8192, "cache_type_k": "q8_0", "cache_type_v": "q8_0"},
         {"n_ctx": 32768, "cache_type_k": "q8_0", "cache_type_v": "q4_0"},
         {"n_ctx": 4096, "flash_attn": "off"}, {"n_ctx": 16384, "n_parallel": 2},
         {"n_ctx": 4096, "n_ubatch": 256, "n_batch": 1024}, {"n_ctx": 4096, "n_parallel": 1, "swa_full": True})
BUFFERS = ("model", "KV", "compute")
_LINE = re.compile(r"(model|KV|compute) buffer size =\s*([\d.]+) MiB")


@dataclass(frozen=True)
class Row:
    setting: str
    estimated: dict[str, float]   # MiB per buffer
    logged: dict[str, float]

    def ratio(self, buffer: str) -> float:
        return self.estimated[buffer] / self.logged[buffer] if self.logged.get(buffer) else float("nan")


def parse_buffers(log: str) -> dict[str, float]:
    """Sum of each kind of buffer llama.cpp reports (every device's, and CPU_Mapped + CPU_REPACK)."""
    out = dict.fromkeys(BUFFERS, 0.0)
    for kind, mib in _LINE.findall(log):
        out[kind] += float(mib)
    return out


def config_text(model: str, params: dict) -> str:
    return yaml.safe_dump({"model": model, **params})


def estimate(model: str, params: dict) -> tuple[dict[str, float], list[str]]:
    """(MiB per buffer, the llama-server argv launch would run) for one setting, from one plan."""
    config = load_source(config_text(model, params), str(Path.cwd() / "bench-memory.yaml")).config
    planned = plan_for_here(config).models[0]
    if planned.memory is None:
        raise SystemExit(f"cannot read the GGUF header of {model}")
    rows = planned.memory.rows
    est = {"model": sum(r.weights + r.repack for r in rows) / MiB, "KV": sum(r.kv for r in rows) / MiB,
           "compute": sum(r.compute for r in rows) / MiB}
    return est, list(planned.processes[0].argv)


def logged(argv: list[str], timeout: float = 120.0) -> dict[str, float]:
    """Start the engine with load logging, wait until it listens (or exits), stop it, parse its log."""
    proc = subprocess.Popen(argv + ["--verbosity", "4"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace")
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout
        for line in proc.stdout:
            lines.append(line)
            if "listening on" in line or time.monotonic() > deadline:
                break
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return parse_buffers("".join(lines))


def measure(model: str, cases=CASES) -> list[Row]:
    rows = []
    for params in cases:
        est, argv = estimate(model, params)
        rows.append(Row(", ".join(f"{k} {v}" for k, v in params.items()), est, logged(argv)))
    return rows


def table(rows: list[Row]) -> str:
    head = f"{'setting':<52}" + "".join(f"{b + ' MiB est/log':>26}" for b in BUFFERS)
    out = [head]
    for r in rows:
        cells = "".join(f"{f'{r.estimated[b]:.1f} / {r.logged[b]:.1f} ({r.ratio(b):.0%})':>26}" for b in BUFFERS)
        out.append(f"{r.setting:<52}{cells}")
    worst = max(abs(r.ratio(b) - 1) for r in rows for b in BUFFERS)
    out.append(f"largest difference: {worst:.1%}")
    return "\n".join(out)


def run(args) -> int:
    model = args.model or str(ensure("gemma3-270m"))
    print(table(measure(model)))
    return 0


def register(sub) -> None:
    p = sub.add_parser("memory", help="the memory plan's estimate vs the buffers llama-server logs")
    p.add_argument("--model", help="GGUF file (default: the embedded Gemma 3 270M)")
    p.set_defaults(func=run)
