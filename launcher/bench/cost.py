"""`launch bench cost`: the CPU the front process spends per request and per streamed token.

    launch bench cost                          # Gemma behind launch: OpenAI chat, Anthropic messages, Responses,
                                               # KServe REST, KServe gRPC (its own port, and the HTTP port)
    launch bench cost --peer litellm           # and LiteLLM's proxy in front of the same engine, same run
    launch bench cost --fake                   # the fast fake engine: the gateway's cost with nothing else busy
    launch bench cost --keys                   # and a second launch with two named keys (every limit on) and
                                               # request capture: what a shared server's bookkeeping costs

The front's CPU time is read from /proc/PID/stat (utime + stime of the process and its threads; the
engines are separate processes and are not counted) before and after each load; the load generator
runs in this process. Each front runs `--rounds` times, interleaved, and the median is reported.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import tempfile
from pathlib import Path

from ..errors import LauncherError
from ..net import free_ports
from ..supervise.proctree import descendants
from . import peers
from .loadgen import run_load
from .overhead import DEFAULT_LAYOUT, fake_engine_extra, gemma_run

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time of one process, all its threads, in seconds: the sum of each thread's schedstat (ns), which
    /proc/PID/stat's 10 ms ticks are too coarse for (32 requests would be counted to 0.3 ms each)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as fh:
                total += int(fh.read().split()[0])
        except (OSError, ValueError, IndexError):   # a thread that just ended
            pass
    return total / 1e9 + _ended_threads(pid)


def _ended_threads(pid: int) -> float:
    """Threads that already ended are gone from /proc/PID/task; their time stays in the process's own
    counters (ticks): count what the tick total has beyond the live threads' ticks."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    whole = (int(fields[11]) + int(fields[12])) / TICK
    live = 0.0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/stat") as fh:
                f = fh.read().rsplit(")", 1)[1].split()
            live += (int(f[11]) + int(f[12])) / TICK
        except (OSError, ValueError, IndexError):
            pass
    return max(whole - live, 0.0)


def tree_cpu(pid: int) -> float:
    """A front and the helpers it started (LiteLLM's workers)."""
    total = 0.0
    for p in [pid, *descendants(pid)]:
        try:
            total += cpu_seconds(p)
        except (OSError, IndexError, ValueError):
            pass
    return total


def measure_front(read_cpu, load) -> dict:
    before = read_cpu()
    summary = asyncio.run(load())
    spent = read_cpu() - before
    if summary.errors:
        raise LauncherError(f"{summary.errors} request(s) failed during the benchmark")
    return {"cpu_s": spent, "requests": summary.requests, "tokens": summary.tokens,
            "ms_per_request": spent / summary.requests * 1000, "us_per_token": spent / max(summary.tokens, 1) * 1e6,
            "tokens_per_s": summary.tokens_per_s}


def run(args) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="launcher-bench-"))
    grpc_port = next(free_ports())
    extra = f"{DEFAULT_LAYOUT}\ngateway: {{grpc_port: {grpc_port}}}\n" + (
        fake_engine_extra(tmp, args.delay, slots=4) if args.fake else "")
    n, c, tokens = args.requests, args.concurrency, args.max_tokens
    keepalive = not args.new_connections
    with gemma_run(extra, tmp) as run_:
        gateway, engine, pid = run_.url, run_.models()["engines"][0]["url"], run_.proc.pid

        def launcher_front(**kw):   # launch's own process: the engines are processes of their own
            return lambda: cpu_seconds(pid), lambda c_, n_: run_load(gateway, "gemma", c_, n_, max_tokens=tokens,
                                                                      keepalive=keepalive, **kw)

        fronts = {"launcher: OpenAI chat stream": launcher_front(protocol="chat"),
                  "launcher: Anthropic messages stream": launcher_front(protocol="anthropic"),
                  "launcher: OpenAI Responses stream": launcher_front(protocol="responses"),
                  "launcher: KServe REST infer_stream": launcher_front(protocol="kserve"),
                  "launcher: KServe gRPC ModelStreamInfer": launcher_front(protocol="grpc",
                                                                           grpc_target=f"127.0.0.1:{grpc_port}"),
                  "launcher: the same, gRPC on the HTTP port": launcher_front(
                      protocol="grpc", grpc_target=gateway.removeprefix("http://"))}
        with contextlib.ExitStack() as stack:
            if args.keys:
                keyed = stack.enter_context(gemma_run(keyed_extra(tmp, args), tmp))
                kpid, kurl = keyed.proc.pid, keyed.url
                fronts["launcher, 2 named keys + capture: OpenAI chat"] = (
                    lambda: cpu_seconds(kpid), lambda c_, n_: run_load(kurl, "gemma", c_, n_, max_tokens=tokens,
                                                                        keepalive=keepalive, protocol="chat",
                                                                        api_key=KEYED_SECRET))
            if args.peer == "litellm":
                url, lpid = stack.enter_context(peers.litellm_process(engine, "gemma", tmp))
                fronts["LiteLLM proxy: OpenAI chat stream"] = (
                    lambda: tree_cpu(lpid), lambda c_, n_: run_load(url, "gemma", c_, n_, max_tokens=tokens,
                                                                     protocol="chat", keepalive=keepalive))
            for _, load in fronts.values():   # first-call costs (imports, connections) are not per-request
                asyncio.run(load(1, 2))
            rows: dict[str, list[dict]] = {name: [] for name in fronts}
            for r in range(args.rounds):
                names = list(fronts)
                for name in names[r % len(names):] + names[:r % len(names)]:
                    read, load = fronts[name]
                    rows[name].append(measure_front(read, lambda: load(c, n)))
    report = {"engine": (f"fake engine, {args.delay * 1000:g} ms between chunks" if args.delay else "fast fake engine")
              if args.fake else "llama-server (Gemma 3 270M, CPU)",
              "requests": n, "concurrency": c, "max_tokens": tokens, "rounds": args.rounds, "cpus": os.cpu_count(),
              "connections": "kept alive" if keepalive else "new per request",
              "results": {name: _median(v) for name, v in rows.items()}}
    _print(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


KEYED_SECRET = "sk-bench-research"


def keyed_extra(tmp: Path, args) -> str:
    """The same deployment behind two named keys, each with every limit on (set high enough never to refuse, so
    each request is counted against all three), usage written to a file, and every request captured."""
    for name in ("research", "batch"):
        (tmp / f"{name}.key").write_text(f"sk-bench-{name}\n")
    keys = ", ".join(f"{{name: {n}, key_file: {tmp / f'{n}.key'}, models: [gem*], requests_per_minute: 1000000, "
                     f"tokens_per_minute: 1000000000, max_concurrent: 256}}" for n in ("research", "batch"))
    return (f"{DEFAULT_LAYOUT}\ngateway: {{keys: [{keys}], usage_db: {tmp / 'usage.sqlite'}, "
            f"capture: {{requests: 100, redact: [user]}}}}\n"
            + (fake_engine_extra(tmp, args.delay, slots=4) if args.fake else ""))


def _median(rounds: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def _print(report: dict) -> None:
    print(f"{report['requests']} streamed requests x {report['max_tokens']} tokens at concurrency "
          f"{report['concurrency']} (connections {report['connections']}), {report['engine']}, {report['cpus']} CPUs; "
          f"median of {report['rounds']} rounds")
    print(f"{'front':<48}{'CPU/request':>14}{'CPU/token':>12}{'tokens/s':>10}")
    base = None
    for name, r in report["results"].items():
        base = base or r
        ratio = f"  ({r['ms_per_request'] / base['ms_per_request']:.2f}x launcher's)" if r is not base else ""
        print(f"{name:<48}{r['ms_per_request']:>11.2f} ms{r['us_per_token']:>9.0f} µs{r['tokens_per_s']:>10.0f}{ratio}")


def register(sub) -> None:
    p = sub.add_parser("cost", help="CPU of the front process per request and per streamed token (vs LiteLLM)")
    p.add_argument("--fake", action="store_true", help="the fake engine instead of Gemma")
    p.add_argument("--delay", type=float, default=0.0,
                   help="with --fake: seconds between its chunks (0.002 paces it like an engine on its own device)")
    p.add_argument("--peer", choices=["litellm"], help="also LiteLLM's proxy in front of the same engine")
    p.add_argument("--keys", action="store_true",
                   help="also a launch with two named keys (all limits on) and request capture, its own engine")
    p.add_argument("--requests", type=int, default=32)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--max-tokens", type=int, default=48)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--new-connections", action="store_true",
                   help="a new connection per request (default: kept alive, as the openai SDK does)")
    p.add_argument("--json", metavar="FILE")
    p.set_defaults(func=run)
