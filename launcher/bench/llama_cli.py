"""`launch bench llama --config X`: llama-bench on a config's model with the launcher's build.

Its options are the benchmark API's parameter table (llama_bench.PARAMS), spelled --n-prompt etc."""
from __future__ import annotations

import asyncio
import json
import os

from ..devices import VISIBLE_ENV
from ..engines.llama_bench import PARAMS, BenchParams, bench_command, run_llama_bench, summarize
from ..errors import LauncherError
from ..models.embedded import model_file
from ..prepare import ensure_models, prepare_binaries
from ..validate import load_config


def _cli_value(text: str):
    """Numbers as numbers (the table's schema checks them), words as words."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def run(args) -> int:
    cfg = load_config(args.config_opt).config
    spec = next((s for s in cfg.models if s.name == args.model), None) if args.model else cfg.models[0]
    if spec is None:
        raise LauncherError(f"no model {args.model!r} in {args.config_opt}")
    ensure_models(cfg)
    binaries = prepare_binaries(cfg)
    params = BenchParams.from_dict({p.name: getattr(args, p.name) for p in PARAMS if getattr(args, p.name) is not None})
    cmd = bench_command(binaries.llama_bench, model_file(spec), params)
    env = dict(os.environ)
    if spec.devices.backend in VISIBLE_ENV and spec.devices.ids:
        env[VISIBLE_ENV[spec.devices.backend]] = ",".join(map(str, spec.devices.ids))
    print("running: " + " ".join(cmd.argv), flush=True)
    result = asyncio.run(run_llama_bench(cmd, env))
    if params.output != "json":
        print(result.output)
    rows = summarize(result.rows)
    print(f"{'test':<16}{'tokens/s':>12}{'stddev':>10}  backend  threads")
    for r in rows:
        print(f"{r['test']:<16}{r['tokens_per_s']:>12}{r['stddev']:>10}  {r['backend']:<8} {r['threads']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"command": list(cmd.argv), "results": rows, "raw": result.rows}, fh, indent=1)
    return 0


def register(sub) -> None:
    p = sub.add_parser("llama", help="llama-bench on a config's model")
    p.add_argument("--config", dest="config_opt", required=True)
    p.add_argument("--model", help="model name (default: the config's first)")
    for param in PARAMS:
        p.add_argument("--" + param.name.replace("_", "-"), dest=param.name, type=_cli_value, help=param.help)
    p.add_argument("--json", metavar="FILE")
    p.set_defaults(func=run)
