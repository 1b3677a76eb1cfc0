"""Python workers: what the gateway adds in front of a worker, and the built-in llama.cpp worker against
llama-server on the same model, side by side.

    launch bench workers              # echo through the gateway (REST, gRPC) / straight to the worker
    launch bench workers --llamacpp   # also: KServe stream tokens/s, built-in worker / llama-server

Rounds interleave A and B (order alternating) and report the median of per-round ratios, as the other
benchmarks do (a shared 2-core machine drifts by several percent between back-to-back runs).
"""
from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Awaitable, Callable

import grpc
import httpx

from ..errors import LauncherError
from ..net import free_ports
from ..protocols.kserve.service import Stub
from ..protocols.kserve.wire import proto_request
from ..testing.launched import launched
from .loadgen import run_load
from .overhead import compare

ECHO = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["hello"]}]}
Calls = Callable[[int, int], Awaitable[tuple[float, float]]]  # (concurrency, requests) -> (req/s, p50 s)


async def _drive(call: Callable[[], Awaitable[None]], concurrency: int, requests: int) -> tuple[float, float]:
    latencies: list[float] = []
    left = iter(range(requests))

    async def one_lane():
        for _ in left:
            start = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - start)
    start = time.perf_counter()
    await asyncio.gather(*(one_lane() for _ in range(concurrency)))
    return requests / (time.perf_counter() - start), statistics.median(latencies)


def rest_echo(url: str, headers: dict | None = None) -> Calls:
    async def run(concurrency: int, requests: int):
        async with httpx.AsyncClient(timeout=30) as client:
            async def call():
                resp = await client.post(url, json=ECHO, headers=headers or {})
                if resp.status_code != 200:
                    raise LauncherError(f"echo failed: {resp.status_code} {resp.text[:200]}")
            return await _drive(call, concurrency, requests)
    return run


def grpc_echo(target: str) -> Calls:
    request = proto_request("echo", {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1],
                                                 "contents": {"bytes_contents": ["aGVsbG8="]}}]})

    async def run(concurrency: int, requests: int):
        async with grpc.aio.insecure_channel(target) as channel:
            stub = Stub(channel)

            async def call():
                await stub.ModelInfer(request, timeout=30)
            return await _drive(call, concurrency, requests)
    return run


def ab(a: Calls, b: Calls, what: str, concurrency: int, rounds: int, requests: int) -> dict:
    ratios, added, rows = [], [], []
    for r in range(rounds):
        order = [("a", a), ("b", b)] if r % 2 == 0 else [("b", b), ("a", a)]
        got = {label: asyncio.run(calls(concurrency, requests)) for label, calls in order}
        ratios.append(got["b"][0] / got["a"][0])
        added.append(got["b"][1] - got["a"][1])
        rows.append({"a_req_per_s": round(got["a"][0], 1), "b_req_per_s": round(got["b"][0], 1)})
    res = {"what": what, "concurrency": concurrency, "ratio_median": statistics.median(ratios),
           "ratios": [round(x, 3) for x in ratios], "latency_added_ms_median": statistics.median(added) * 1000,
           "rounds": rows}
    print(f"{what:<52} c={concurrency:<3} req/s ratio {res['ratio_median']:.3f} (rounds {res['ratios']}; "
          f"A {statistics.median(x['a_req_per_s'] for x in rows):.0f}, "
          f"B {statistics.median(x['b_req_per_s'] for x in rows):.0f} req/s)  "
          f"p50 latency added {res['latency_added_ms_median']:+.2f} ms", flush=True)
    return res


def main(args) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="launcher-bench-"))
    port, grpc_port = next(free_ports()), next(free_ports())
    report: dict = {"results": []}
    with launched(["run", "examples.basic.app:app", "--port", str(port), "--grpc-port", str(grpc_port),
                   "--threads", "8"], f"http://127.0.0.1:{port}", tmp / "run.log") as run:
        [worker] = httpx.get(run.url + "/registry").json()["local"]
        direct = rest_echo(worker["processes"][0]["url"] + "/v2/models/echo/infer",
                           {"x-capability-query": '{"type": "echo"}'})
        for c in [int(x) for x in args.concurrency.split(",")]:
            report["results"].append(ab(direct, rest_echo(run.url + "/v2/models/echo/infer"),
                                        "echo: gateway REST / worker direct", c, args.rounds, args.requests))
            report["results"].append(ab(direct, grpc_echo(f"127.0.0.1:{grpc_port}"),
                                        "echo: gateway gRPC / worker direct", c, args.rounds, args.requests))
    if args.llamacpp:
        report["results"] += llamacpp_vs_llama_server(tmp, args)
    if args.json:
        print(json.dumps(report, indent=1))
    return 0


def llamacpp_vs_llama_server(tmp: Path, args) -> list[dict]:
    """The examples/llamacpp config: KServe infer_stream to `gemma` (llama-server) and to `gemma-py` (the
    built-in worker), one gateway, one model file."""
    port, grpc_port = next(free_ports()), next(free_ports())
    env = {"LLAMACPP_EXAMPLE_PORT": str(port), "LLAMACPP_EXAMPLE_GRPC_PORT": str(grpc_port)}
    out = []
    with launched(["--config", "examples/llamacpp/config.yaml"], f"http://127.0.0.1:{port}", tmp / "ll.log",
                  env=env) as run:
        def load(model: str):
            return lambda c, n, tokens: run_load(run.url, model, c, n, max_tokens=tokens, protocol="kserve")
        res = compare(load("gemma"), load("gemma-py"), 1, args.rounds, 4, 64)
        res["what"] = "KServe stream tok/s: built-in llama.cpp worker / llama-server"
        print(f"{res['what']:<52} c=1   tokens/s ratio {res['ratio_median']:.3f} (rounds {res['ratios']}; "
              f"A {res['a_tokens_per_s']:.1f}, B {res['b_tokens_per_s']:.1f} tok/s)  "
              f"TTFT p50 added {res['ttft_added_ms_median']:+.1f} ms", flush=True)
        out.append(res)
    return out


def register(sub) -> None:
    p = sub.add_parser("workers", help="gateway vs direct Python worker; built-in llama.cpp worker vs llama-server")
    p.add_argument("--concurrency", default="1,8")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--requests", type=int, default=300, help="echo requests per measurement")
    p.add_argument("--llamacpp", action="store_true", help="also the built-in llama.cpp worker vs llama-server")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=main)
