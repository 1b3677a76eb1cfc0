"""`launch bench llama --config X`: llama-bench on a config's model with the launcher's build."""
from __future__ import annotations

import asyncio
import json
import os

from ..devices import VISIBLE_ENV
from .llama_bench import BenchParams, bench_argv, run_llama_bench, summarize

CLI_PARAMS = ("n_prompt", "n_gen", "n_depth", "batch_size", "ubatch_size", "cache_type_k", "cache_type_v",
              "threads", "n_gpu_layers", "split_mode", "main_gpu", "flash_attn", "repetitions")


def run(args) -> int:
    from ..config import load_config
    from ..models.embedded import model_file
    from ..serve import ensure_models, prepare_binaries
    cfg = load_config(args.config_opt).config
    spec = next((s for s in cfg.models if s.name == args.model), None) if args.model else cfg.models[0]
    if spec is None:
        from ..errors import LauncherError
        raise LauncherError(f"no model {args.model!r} in {args.config_opt}")
    ensure_models(cfg)
    binaries = prepare_binaries(cfg)
    params = BenchParams.from_dict({k: getattr(args, k) for k in CLI_PARAMS if getattr(args, k) is not None})
    argv = bench_argv(binaries.llama_bench, model_file(spec), params)
    env = dict(os.environ)
    if spec.devices.backend in VISIBLE_ENV and spec.devices.ids:
        env[VISIBLE_ENV[spec.devices.backend]] = ",".join(map(str, spec.devices.ids))
    print("running: " + " ".join(argv), flush=True)
    raw = asyncio.run(run_llama_bench(argv, env))
    rows = summarize(raw)
    print(f"{'test':<16}{'tokens/s':>12}{'stddev':>10}  backend  threads")
    for r in rows:
        print(f"{r['test']:<16}{r['tokens_per_s']:>12}{r['stddev']:>10}  {r['backend']:<8} {r['threads']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"command": argv, "results": rows, "raw": raw}, fh, indent=1)
    return 0


def register(sub) -> None:
    p = sub.add_parser("llama", help="llama-bench on a config's model")
    p.add_argument("--config", dest="config_opt", required=True)
    p.add_argument("--model", help="model name (default: the config's first)")
    for name in CLI_PARAMS:
        kind = str if name in ("cache_type_k", "cache_type_v", "split_mode", "flash_attn") else int
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=kind)
    p.add_argument("--json", metavar="FILE")
    p.set_defaults(func=run)
