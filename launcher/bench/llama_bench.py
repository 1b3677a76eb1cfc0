"""llama-bench with the Llama Switch API's parameter set: pure argv building, JSON results.

    argv = bench_argv(binary, model_path, params)      # unit-tested
    rows = await run_llama_bench(argv, env)           # real run, `-o json` parsed
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, fields
from typing import Any

import jsonschema

from ..errors import LauncherError

# What the API and the CLI accept; every field maps to one llama-bench flag.
PARAMS_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "n_prompt": {"type": "integer", "minimum": 0}, "n_gen": {"type": "integer", "minimum": 0},
        "n_depth": {"type": "integer", "minimum": 0}, "batch_size": {"type": "integer", "minimum": 1},
        "ubatch_size": {"type": "integer", "minimum": 1},
        "cache_type_k": {"enum": ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"]},
        "cache_type_v": {"enum": ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"]},
        "threads": {"type": "integer", "minimum": 1}, "n_gpu_layers": {"type": "integer", "minimum": -1},
        "split_mode": {"enum": ["none", "layer", "row", "tensor"]}, "main_gpu": {"type": "integer", "minimum": 0},
        "flash_attn": {"enum": ["on", "off", "auto"]}, "mmap": {"type": "boolean"},
        "repetitions": {"type": "integer", "minimum": 1, "maximum": 100},
        "tensor_split": {"type": "array", "items": {"type": "number", "minimum": 0}},
        "no_kv_offload": {"type": "boolean"}, "embeddings": {"type": "boolean"},
    },
}
FLAGS = {"n_prompt": "-p", "n_gen": "-n", "n_depth": "-d", "batch_size": "-b", "ubatch_size": "-ub",
         "cache_type_k": "-ctk", "cache_type_v": "-ctv", "threads": "-t", "n_gpu_layers": "-ngl",
         "split_mode": "-sm", "main_gpu": "-mg", "flash_attn": "-fa", "repetitions": "-r"}


@dataclass(frozen=True)
class BenchParams:
    n_prompt: int = 128
    n_gen: int = 32
    n_depth: int | None = None
    batch_size: int | None = None
    ubatch_size: int | None = None
    cache_type_k: str | None = None
    cache_type_v: str | None = None
    threads: int | None = None
    n_gpu_layers: int | None = None
    split_mode: str | None = None
    main_gpu: int | None = None
    flash_attn: str | None = None
    mmap: bool | None = None
    repetitions: int = 3
    tensor_split: tuple[float, ...] | None = None
    no_kv_offload: bool | None = None
    embeddings: bool | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BenchParams":
        errors = sorted(jsonschema.Draft202012Validator(PARAMS_SCHEMA).iter_errors(data), key=lambda e: e.path)
        if errors:
            raise LauncherError("; ".join(f"{'.'.join(map(str, e.path)) or 'body'}: {e.message}" for e in errors))
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**data)


def bench_argv(binary: str, model: str, p: BenchParams) -> list[str]:
    argv = [binary, "-m", model, "-o", "json"]
    for f in fields(p):
        value = getattr(p, f.name)
        if value is None or f.name not in FLAGS:
            continue
        argv += [FLAGS[f.name], str(value)]
    if p.mmap is not None:
        argv += ["--load-mode", "mmap" if p.mmap else "none"]
    if p.tensor_split:
        argv += ["-ts", "/".join(str(x) for x in p.tensor_split)]
    if p.no_kv_offload is not None:
        argv += ["-nkvo", "1" if p.no_kv_offload else "0"]
    if p.embeddings is not None:
        argv += ["-embd", "1" if p.embeddings else "0"]
    return argv


def summarize(rows: list[dict]) -> list[dict]:
    """The fields people read from llama-bench's JSON: test, tokens/s (mean, stddev), settings."""
    out = []
    for r in rows:
        test = f"pp{r['n_prompt']}" if r.get("n_prompt") and not r.get("n_gen") else f"tg{r.get('n_gen')}"
        if r.get("n_depth"):
            test += f" @ d{r['n_depth']}"
        out.append({"test": test, "tokens_per_s": round(r.get("avg_ts", 0.0), 2),
                    "stddev": round(r.get("stddev_ts", 0.0), 2), "model_type": r.get("model_type"),
                    "backend": r.get("backends"), "threads": r.get("n_threads"), "n_gpu_layers": r.get("n_gpu_layers"),
                    "repetitions": len(r.get("samples_ts") or [])})
    return out


async def run_llama_bench(argv: list[str], env: dict[str, str] | None = None) -> list[dict]:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=env)
    try:
        out, err = await proc.communicate()
    except asyncio.CancelledError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-5:]
        raise LauncherError(f"llama-bench exited with {proc.returncode}: {' | '.join(tail)}")
    try:
        return json.loads(out)
    except ValueError as exc:
        raise LauncherError(f"llama-bench printed no JSON: {out[:200]!r}") from exc
