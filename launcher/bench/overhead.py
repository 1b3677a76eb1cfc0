"""Gateway overhead: the same engine measured directly and through the gateway, side by side.

    launch bench overhead                  # real llama-server + Gemma, concurrency 1 and 4
    launch bench overhead --fake           # an engine that streams as fast as possible: pure gateway cost
    launch bench overhead --peer           # also llama-cpp-python's own server (the peer) over the same build
    launch bench overhead --peer litellm   # engine direct, launcher's gateway and LiteLLM's proxy side by side

The loads compared are interleaved (the order rotating per round) and the median of per-round ratios is
reported: on a shared 2-core machine, back-to-back runs of one server differ by +-7%.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Awaitable, Callable

from ..engines import LlamaCppPython
from ..errors import LauncherError
from ..net import free_ports
from ..testing.launched import launched
from . import peers
from .loadgen import Summary, run_load

GEMMA = """model: embedded:gemma3-270m
model_alias: gemma
port: {port}
{extra}
"""
DEFAULT_LAYOUT = "n_ctx: 8192\nn_parallel: 4"


@contextlib.contextmanager
def gemma_run(extra: str, tmp: Path):
    """`launch` serving Gemma (plus `extra` YAML) in a subprocess; yields the Launched run."""
    port = next(free_ports())
    cfg = tmp / f"bench-{port}.yaml"
    cfg.write_text(GEMMA.format(port=port, extra=extra))
    with launched(["--config", str(cfg)], f"http://127.0.0.1:{port}", tmp / f"launch-{port}.log") as run:
        yield run


@contextlib.contextmanager
def gemma_launched(extra: str, tmp: Path):
    """As gemma_run; yields (gateway URL, engine URL)."""
    with gemma_run(extra, tmp) as run:
        yield run.url, run.models()["engines"][0]["url"]


def fake_engine_extra(tmp: Path, delay: float = 0.0, slots: int = 0) -> str:
    """engine: YAML for the fake engine; `delay` seconds between chunks (0: as fast as it can)."""
    wrapper = tmp / "fast-engine"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m launcher.testing.fake_engine \"$@\"\n")
    wrapper.chmod(0o755)
    args = (["--delay", str(delay)] if delay else []) + (["--slots", str(slots)] if slots else [])
    return f"engine: {{binary: {wrapper}" + (f", extra_args: {json.dumps(args)}}}" if args else "}")


Load = Callable[[int, int, int], Awaitable[Summary]]  # (concurrency, requests, max_tokens) -> a measurement


def openai_load(url: str, model: str = "gemma") -> Load:
    return lambda c, n, tokens: run_load(url, model, c, n, max_tokens=tokens)


def compare(a: Load, b: Load, concurrency: int, rounds: int, requests: int, max_tokens: int) -> dict:
    """B relative to A: median of per-round tokens/s ratios and of TTFT p50 differences."""
    return compare_all(a, {"b": b}, concurrency, rounds, requests, max_tokens)["b"]


def compare_all(base: Load, others: dict[str, Load], concurrency: int, rounds: int, requests: int,
                max_tokens: int) -> dict[str, dict]:
    """Each of `others` relative to `base`, side by side: every round runs every load once, the order
    rotating from round to round, and the medians of the per-round ratios are reported."""
    loads = [("base", base), *others.items()]
    rows: list[dict[str, Summary]] = []
    for r in range(rounds):
        order = loads[r % len(loads):] + loads[:r % len(loads)]
        got = {label: asyncio.run(load(concurrency, requests, max_tokens)) for label, load in order}
        if any(x.errors for x in got.values()):
            raise LauncherError("errors during the benchmark: " + ", ".join(f"{k} {v.errors}" for k, v in got.items()))
        rows.append(got)
    out = {}
    for label in others:
        ratios = [row[label].tokens_per_s / row["base"].tokens_per_s for row in rows]
        ttft_deltas = [row[label].ttft_p50 - row["base"].ttft_p50 for row in rows]
        out[label] = {"concurrency": concurrency, "ratio_median": statistics.median(ratios),
                      "ratios": [round(x, 3) for x in ratios],
                      "ttft_added_ms_median": statistics.median(ttft_deltas) * 1000,
                      "a_tokens_per_s": statistics.median(row["base"].tokens_per_s for row in rows),
                      "b_tokens_per_s": statistics.median(row[label].tokens_per_s for row in rows),
                      "rounds": [{"round": r, "a": row["base"].row(), "b": row[label].row()}
                                 for r, row in enumerate(rows)]}
    return out


def measure(a: Load, b: Load, what: str, args, min_requests: int) -> list[dict]:
    """B relative to A at each concurrency level of `args`, printed as it goes."""
    return measure_all(a, {what: b}, args, min_requests)


def measure_all(base: Load, others: dict[str, Load], args, min_requests: int) -> list[dict]:
    """Each of `others` (named by what it measures) relative to `base`, side by side, at each concurrency
    level of `args`, printed as it goes."""
    out = []
    for c in [int(x) for x in args.concurrency.split(",")]:
        results = compare_all(base, others, c, args.rounds, args.requests or max(min_requests, 2 * c),
                              args.max_tokens)
        for what, res in results.items():
            res["what"] = what
            out.append(res)
            _print(res)
    return out


def main(args) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="launcher-bench-"))
    extra = DEFAULT_LAYOUT + "\n" + (fake_engine_extra(tmp) if args.fake else "")
    args.concurrency = args.concurrency or ("1,4,16" if args.peer == "litellm" else "1,4")
    report: dict = {"engine": "fast fake engine" if args.fake else "llama-server (Gemma 3 270M, CPU)", "results": []}
    with gemma_launched(extra, tmp) as (gateway, engine):
        if args.peer == "litellm":  # three side by side: the engine direct, launcher's gateway, LiteLLM's proxy
            with peers.litellm_proxy(engine, "gemma", tmp) as litellm:
                report["results"] += measure_all(openai_load(engine), {
                    "launcher gateway / direct engine": openai_load(gateway),
                    "LiteLLM proxy / direct engine": openai_load(litellm)}, args, min_requests=4)
        else:
            report["results"] += measure(openai_load(engine), openai_load(gateway), "gateway / direct engine",
                                         args, min_requests=4)
    if args.peer == LlamaCppPython.name and not args.fake:
        with gemma_launched(DEFAULT_LAYOUT + f"\nengine: {{kind: {LlamaCppPython.name}}}", tmp) as (_, peer):
            with gemma_launched(DEFAULT_LAYOUT, tmp) as (gateway, _):
                report["results"] += measure(openai_load(peer), openai_load(gateway), "launcher gateway + "
                                             "llama-server / llama-cpp-python server direct", args, min_requests=4)
    if args.json:
        print(json.dumps(report, indent=1))
    return 0


def layouts(args) -> int:
    """Aggregate tokens/s of two layouts of the same model, both behind the gateway."""
    # Same context per slot (1024 tokens) on both sides.
    a_extra = "n_ctx: 8192\nn_parallel: 8\nparallel: {mode: single}"
    b_extra = "n_ctx: 4096\nn_parallel: 4\nparallel: {mode: replicas, replicas: 2}"
    tmp = Path(tempfile.mkdtemp(prefix="launcher-bench-"))
    with gemma_launched(a_extra, tmp) as (a_url, _):
        with gemma_launched(b_extra, tmp) as (b_url, _):
            report = measure(openai_load(a_url), openai_load(b_url),
                             "replicas=2 (n_parallel 4 each) / one engine (n_parallel 8)", args, min_requests=0)
    if args.json:
        print(json.dumps(report, indent=1))
    return 0


def protocols(args) -> int:
    """KServe v2 streams (REST infer_stream, gRPC ModelStreamInfer) against the OpenAI stream, same engine."""
    tmp = Path(tempfile.mkdtemp(prefix="launcher-bench-"))
    grpc_port = next(free_ports())
    extra = f"{DEFAULT_LAYOUT}\ngateway: {{grpc_port: {grpc_port}}}"
    report: dict = {"engine": "llama-server (Gemma 3 270M, CPU)", "results": []}
    with gemma_launched(extra, tmp) as (gateway, _):
        openai = openai_load(gateway)
        rest = lambda c, n, tokens: run_load(gateway, "gemma", c, n, max_tokens=tokens, protocol="kserve")  # noqa: E731
        grpc = lambda c, n, tokens: run_load(gateway, "gemma", c, n, max_tokens=tokens, protocol="grpc",  # noqa: E731
                                             grpc_target=f"127.0.0.1:{grpc_port}")
        report["results"] += measure(openai, rest, "KServe REST infer_stream / OpenAI stream", args, min_requests=4)
        report["results"] += measure(openai, grpc, "KServe gRPC ModelStreamInfer / OpenAI stream", args,
                                     min_requests=4)
    if args.json:
        print(json.dumps(report, indent=1))
    return 0


def _print(res: dict) -> None:
    print(f"{res['what']:<66} c={res['concurrency']:<3} tokens/s ratio {res['ratio_median']:.3f} "
          f"(rounds {res['ratios']}; A {res['a_tokens_per_s']:.1f}, B {res['b_tokens_per_s']:.1f} tok/s)  "
          f"TTFT p50 added {res['ttft_added_ms_median']:+.1f} ms", flush=True)


def register(sub) -> None:
    p = sub.add_parser("overhead", help="gateway vs direct engine (and peers), side by side")
    p.add_argument("--fake", action="store_true", help="use an engine that streams as fast as possible")
    p.add_argument("--peer", nargs="?", const=LlamaCppPython.name, choices=[LlamaCppPython.name, "litellm"],
                   help="also a peer: llama-cpp-python's own server (the default), or LiteLLM's proxy in front of "
                        "the same engine (installed on first use into ~/.cache/launcher/peers/litellm)")
    _ab_options(p, concurrency=None, requests_help="per measurement (default 2 x concurrency, min 4)")
    p.set_defaults(func=main)

    k = sub.add_parser("protocols", help="KServe v2 REST and gRPC streams vs the OpenAI stream, same engine")
    _ab_options(k, concurrency="1,4", requests_help="per measurement (default 2 x concurrency, min 4)")
    k.set_defaults(func=protocols)

    q = sub.add_parser("replicas", help="replicas=2 vs one engine, both behind the gateway")
    _ab_options(q, concurrency="8", requests_help="per measurement (default 2 x concurrency)")
    q.set_defaults(func=layouts)


def _ab_options(p, concurrency: str | None, requests_help: str) -> None:
    p.add_argument("--concurrency", default=concurrency, help="comma-separated levels" + (
        "" if concurrency else " (default 1,4; 1,4,16 with --peer litellm)"))
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--requests", type=int, default=0, help=requests_help)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--json", action="store_true")
