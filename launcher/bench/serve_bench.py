"""`launch bench serve`: a serving load test against the running gateway of a config.

For each concurrency level: TTFT p50/p99, time per output token, aggregate tokens/s, errors;
printed as a table, optionally as JSON and as a PNG chart.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys

import httpx

from ..errors import LauncherError
from ..validate import load_config
from .loadgen import run_load


def _progress(label: str):
    tty = sys.stderr.isatty()

    def show(done: int, total: int) -> None:
        if tty:
            filled = done * 30 // total
            sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
            if done == total:
                sys.stderr.write("\n")
        elif done == total:
            sys.stderr.write(f"{label}: {total} requests done\n")
        sys.stderr.flush()
    return show


def table(rows: list[dict]) -> str:
    head = ("concurrency", "requests", "errors", "tokens/s", "TTFT p50 ms", "TTFT p99 ms", "TPOT p50 ms")
    keys = ("concurrency", "requests", "errors", "tokens_per_s", "ttft_p50_ms", "ttft_p99_ms", "tpot_p50_ms")
    cells = [head] + [tuple(str(r[k]) for k in keys) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells)


def chart(rows: list[dict], path: str, title: str) -> None:
    try:  # optional and slow to import: only when a chart is asked for
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise LauncherError("the PNG chart needs matplotlib: pip install matplotlib") from exc
    conc = [r["concurrency"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(conc, [r["tokens_per_s"] for r in rows], marker="o")
    a.set(xlabel="concurrent requests", ylabel="tokens/s (all streams)", title="throughput", xscale="log", xticks=conc)
    a.set_xticklabels(conc)
    b.plot(conc, [r["ttft_p50_ms"] for r in rows], marker="o", label="p50")
    b.plot(conc, [r["ttft_p99_ms"] for r in rows], marker="s", label="p99")
    b.set(xlabel="concurrent requests", ylabel="ms", title="time to first token", xscale="log", xticks=conc)
    b.set_xticklabels(conc)
    b.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(args) -> int:
    cfg = load_config(args.config_opt, offline=True).config
    url = args.url or cfg.gateway.local_url
    model = args.model or cfg.models[0].name
    key = os.environ.get(cfg.gateway.api_key_env) if cfg.gateway.api_key_env else None
    try:
        httpx.get(url + "/health", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        raise LauncherError(f"no gateway answers at {url}: start it first (launch --config {args.config_opt})") from exc
    rows = []
    for c in [int(x) for x in args.concurrency.split(",")]:
        n = args.requests or max(8, 2 * c)
        summary = asyncio.run(run_load(url, model, c, n, max_tokens=args.max_tokens, api_key=key,
                                       progress=_progress(f"concurrency {c}")))
        rows.append(summary.row())
    print(table(rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"url": url, "model": model, "max_tokens": args.max_tokens, "results": rows}, fh, indent=1)
        print(f"JSON: {args.json}")
    if args.png:
        chart(rows, args.png, f"{model} via launcher ({args.max_tokens} tokens per request)")
        print(f"chart: {args.png}")
    return 1 if any(r["errors"] for r in rows) else 0


def register(sub) -> None:
    p = sub.add_parser("serve", help="load-test the running gateway of a config")
    p.add_argument("--config", dest="config_opt", required=True)
    p.add_argument("--url", help="gateway URL (default: from the config)")
    p.add_argument("--model", help="model name (default: the config's first)")
    p.add_argument("--concurrency", default="1,4,16")
    p.add_argument("--requests", type=int, default=0, help="per level (default: 2 x concurrency, at least 8)")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--png", metavar="FILE", help="write a chart")
    p.set_defaults(func=run)
