"""`launch bench ceiling`: the most one gateway process can pass, against the engine it fronts.

The fast fake engine streams as fast as it can; Debian's `wrk` (compiled, one thread) sends streamed
chat requests at a fixed concurrency, to the engine directly and through the gateway, interleaved
round by round. A Python load generator would itself be the bottleneck here (it was: it capped both
sides near 30k tokens/s).
"""
from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from ..errors import LauncherError
from .overhead import fake_engine_extra, gemma_run

_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read \d+, write (\d+), timeout (\d+)")



def wrk_script(tmp: Path, max_tokens: int) -> Path:
    body = json.dumps({"model": "gemma", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": max_tokens,
                       "stream": True})
    path = tmp / "chat.lua"
    # Connection: close on both sides: the engine closes after every streamed answer anyway, and the gateway's
    # kept-alive client connections would otherwise make it look faster than the engine itself.
    path.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                    'wrk.headers["Connection"] = "close"\n' + f"wrk.body = {json.dumps(body)}\n")
    return path


def wrk_rate(url: str, concurrency: int, seconds: float, script: Path) -> float:
    """Streamed requests per second `wrk` got from `url` (every answer read to its end)."""
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "-s", str(script),
                          url + "/v1/chat/completions"], capture_output=True, text=True, timeout=seconds + 60).stdout
    # `read` socket errors are an engine closing the connection after each stream, as llama-server does
    # (wrk then reconnects); failed connects, writes, timeouts and error statuses are real errors.
    failed = _SOCKET.search(out)
    if "Non-2xx" in out or (failed and any(int(n) for n in failed.groups())):
        raise LauncherError(f"errors during the benchmark at {url}:\n{out}")
    match = _RATE.search(out)
    if not match:
        raise LauncherError(f"wrk printed no rate:\n{out}")
    return float(match.group(1))


def run(args) -> int:
    if not shutil.which("wrk"):
        raise LauncherError("the ceiling needs wrk, a load generator that is not itself the bottleneck: "
                            "apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="launcher-bench-"))
    levels = [int(x) for x in args.concurrency.split(",")]
    # Enough slots that the gateway's queue is not what limits it: the engine direct has none.
    extra = f"n_ctx: 8192\nn_parallel: {max(levels)}\n" + fake_engine_extra(tmp)
    script = wrk_script(tmp, args.max_tokens)
    rows = []
    with gemma_run(extra, tmp) as launched:
        engine = launched.models()["engines"][0]["url"]
        wrk_rate(launched.url, 4, 2, script)   # warm both paths
        wrk_rate(engine, 4, 2, script)
        for c in levels:
            direct, gateway = [], []
            for r in range(args.rounds):
                order = [("direct", engine, direct), ("gateway", launched.url, gateway)]
                for _, url, into in (order if r % 2 == 0 else order[::-1]):
                    into.append(wrk_rate(url, c, args.seconds, script))
            ratio = statistics.median(g / d for g, d in zip(gateway, direct))
            row = {"concurrency": c, "direct_rps": statistics.median(direct), "gateway_rps": statistics.median(gateway),
                   "ratio": ratio, "tokens": args.max_tokens}
            rows.append(row)
            print(f"c={c:<4} direct {row['direct_rps']:8.0f} req/s ({row['direct_rps'] * args.max_tokens:9.0f} tokens/s)"
                  f"   gateway {row['gateway_rps']:8.0f} req/s ({row['gateway_rps'] * args.max_tokens:9.0f} tokens/s)"
                  f"   gateway / direct {ratio:.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"engine": "fast fake engine", "load": "wrk -t1", "results": rows},
                                              indent=1))
    return 0


def register(sub) -> None:
    p = sub.add_parser("ceiling", help="the most one gateway passes vs the engine direct (fast fake engine, wrk)")
    p.add_argument("--concurrency", default="16,64")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--seconds", type=float, default=6)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", metavar="FILE")
    p.set_defaults(func=run)
