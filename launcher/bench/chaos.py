"""Faults under load, measured: every request must complete or end in a clean error, never hang, and
the gateway's memory and file descriptors must come back to where they were.

    launch bench chaos                      # 300 mixed requests at concurrency 8, the engine SIGKILLed every 3 s
    launch bench chaos --replicas 2         # the same over two replicas (one killed at a time)
    launch bench chaos --soak 5000          # no faults: 5,000 requests at concurrency 16, RSS and fds
    launch bench chaos --drain              # SIGTERM in the middle of the load: nothing in flight lost

Against the fast fake engine by default (the faults are the gateway's business); `--gemma` uses
llama-server with Gemma. Request kinds are mixed: OpenAI chat streamed, OpenAI completion, KServe infer,
KServe infer_stream. An outcome is `ok` (a whole answer), `error` (an error JSON in its family's
envelope, or a stream that ends with an error event and its terminator; a request running on the engine
that was killed), `refused` (503/429 with an error JSON before it ran), or `bad` (anything else: a hang past the client timeout, a dropped connection, a stream cut
without a word). The tests run short forms of the same functions.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ..net import free_ports
from ..testing.launched import Launched, wait_for

KINDS = ("openai_stream", "openai", "kserve", "kserve_stream")
FAKE_ENGINE = "engine: {{binary: {wrapper}, max_restarts: 1000, restart_backoff: 0.1}}"
CONFIG = """model: embedded:gemma3-270m
model_alias: gemma
n_ctx: 4096
n_parallel: 4
port: {port}
{engine}
{parallel}
gateway: {{max_queue: 256, load_timeout: 60, drain_timeout: 30}}
"""


@dataclass
class Outcome:
    kind: str
    result: str          # ok | error | refused | bad
    seconds: float
    detail: str = ""
    started: float = 0.0   # perf_counter when it was sent


@dataclass
class Footprint:
    rss_mib: float
    fds: int

    @classmethod
    def of(cls, pid: int) -> "Footprint":
        rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                   if line.startswith("VmRSS:"))
        return cls(rss / 1024, len(os.listdir(f"/proc/{pid}/fd")))


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    kills: int = 0
    before: Footprint | None = None
    after: Footprint | None = None

    def counts(self) -> dict:
        return dict(Counter(o.result for o in self.outcomes))

    def summary(self) -> dict:
        secs = [o.seconds for o in self.outcomes]
        out = {"requests": len(self.outcomes), "kills": self.kills, **self.counts(),
               "slowest_s": round(max(secs), 2) if secs else 0,
               "p50_s": round(statistics.median(secs), 3) if secs else 0,
               "details": dict(Counter(f"{o.result}: {o.detail}" for o in self.outcomes if o.result != "ok"))}
        if self.before and self.after:
            out.update(rss_before_mib=round(self.before.rss_mib, 1), rss_after_mib=round(self.after.rss_mib, 1),
                       fds_before=self.before.fds, fds_after=self.after.fds)
        return out


def _error_json(resp: httpx.Response, family: str) -> str | None:
    """What the error says (its code, or its message for KServe), or None when it is not in its envelope."""
    try:
        data = resp.json()
    except ValueError:
        return None
    if family == "kserve":
        return data["error"][:120] if isinstance(data, dict) and isinstance(data.get("error"), str) else None
    if isinstance(data, dict) and isinstance(data.get("error"), dict) and "message" in data["error"]:
        return str(data["error"].get("code"))
    return None


async def one(client: httpx.AsyncClient, url: str, model: str, kind: str, max_tokens: int) -> Outcome:
    started = time.perf_counter()
    family = "kserve" if kind.startswith("kserve") else "openai"
    stream = kind.endswith("stream")
    if family == "openai":
        path = "/v1/chat/completions" if stream else "/v1/completions"
        body = {"model": model, "max_tokens": max_tokens, "stream": stream, **(
            {"messages": [{"role": "user", "content": "Tell me a story"}]} if stream else {"prompt": "Once"})}
    else:
        path = f"/v2/models/{model}/{'infer_stream' if stream else 'infer'}"
        body = {"inputs": [{"name": "prompt", "datatype": "BYTES", "shape": [1], "data": ["Once"]},
                           {"name": "max_tokens", "datatype": "INT64", "shape": [1], "data": [max_tokens]}]}

    def done(result: str, detail: str = "") -> Outcome:
        return Outcome(kind, result, time.perf_counter() - started, detail, started)
    try:
        async with client.stream("POST", url + path, json=body) as resp:
            if resp.status_code >= 400:
                await resp.aread()
                what = _error_json(resp, family)
                if what is None:
                    return done("bad", f"{resp.status_code} without an error envelope")
                if b"failed during the request" in resp.content:  # it was running on the engine that died
                    return done("error", f"{resp.status_code} in flight on a killed engine")
                return done("refused" if resp.status_code in (429, 503) else "error", f"{resp.status_code} {what}")
            if not stream:
                await resp.aread()
                data = resp.json()
                whole = data.get("choices") if family == "openai" else data.get("outputs")
                return done("ok") if whole else done("bad", "200 without an answer")
            events = [line[6:] async for line in resp.aiter_lines() if line.startswith("data: ")]
    except httpx.TimeoutException:
        return done("bad", "hang: no answer within the client timeout")
    except httpx.HTTPError as exc:
        return done("bad", f"connection: {type(exc).__name__}")
    if not events:
        return done("bad", "empty stream")
    if family == "openai":
        if events[-1] != "[DONE]":
            return done("bad", "stream without [DONE]")
        errors = [e for e in events[:-1] if '"error"' in e and json.loads(e).get("error")]
        return done("error", "error event") if errors else done("ok")
    last = json.loads(events[-1])
    if last.get("error_message"):
        return done("error", "error event")
    reasons = [o for o in (last.get("infer_response") or {}).get("outputs", []) if o["name"] == "finish_reason"]
    return done("ok") if reasons and reasons[0]["data"][0] else done("bad", "stream without a final event")


async def load(url: str, model: str, requests: int, concurrency: int, *, max_tokens: int = 16,
               timeout: float = 120.0, kinds=KINDS, seed: int = 1) -> list[Outcome]:
    rng = random.Random(seed)
    plan = [rng.choice(kinds) for _ in range(requests)]
    outcomes: list[Outcome] = []
    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        queue = iter(plan)

        async def lane():
            for kind in queue:
                outcomes.append(await one(client, url, model, kind, max_tokens))
        await asyncio.gather(*(lane() for _ in range(concurrency)))
    return outcomes


def engine_pids(url: str) -> list[int]:
    data = httpx.get(url + "/v1/models", timeout=10).json()["data"][0]
    return [e["pid"] for e in data["engines"] if e["pid"] and e["state"] == "ready"]


async def killer(url: str, every: float, stop: asyncio.Event, report: Report) -> None:
    """SIGKILL one ready engine every `every` seconds (the first, then the next: replicas take turns)."""
    turn = 0
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        if stop.is_set():
            return
        pids = await asyncio.to_thread(engine_pids, url)
        if pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pids[turn % len(pids)], signal.SIGKILL)
                report.kills += 1
            turn += 1


async def chaos_run(url: str, model: str, requests: int, concurrency: int, kill_every: float, *,
                    max_tokens: int = 16) -> Report:
    report = Report()
    stop = asyncio.Event()
    task = asyncio.create_task(killer(url, kill_every, stop, report))
    try:
        report.outcomes = await load(url, model, requests, concurrency, max_tokens=max_tokens)
    finally:
        stop.set()
        await task
    return report


def settle(pid: int, url: str, concurrency: int, seconds: float = 5.0) -> Footprint:
    """The gateway's footprint once idle again: every engine ready, one calm round of requests (the
    upstream pool drops connections to engines that died on its next use), then idle past the pool's
    keep-alive expiry."""
    wait_for(lambda: httpx.get(url + "/ready").status_code == 200, 120, 0.2)
    asyncio.run(load(url, "gemma", 2 * concurrency, concurrency))
    time.sleep(seconds)
    return Footprint.of(pid)


def fake_engine_config(tmp: Path, port: int, replicas: int, tokens: int, delay: float) -> str:
    wrapper = tmp / "fake-engine"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m launcher.testing.fake_engine --tokens {tokens} "
                       f"--delay {delay} \"$@\"\n")
    wrapper.chmod(0o755)
    return CONFIG.format(port=port, engine=FAKE_ENGINE.format(wrapper=wrapper), parallel=_parallel(replicas))


def _parallel(replicas: int) -> str:
    return f"parallel: {{mode: replicas, replicas: {replicas}}}" if replicas > 1 else ""


def start(tmp: Path, replicas: int, gemma: bool, tokens: int = 16, delay: float = 0.02) -> Launched:
    port = next(free_ports())
    cfg = tmp / f"chaos-{port}.yaml"
    cfg.write_text(CONFIG.format(port=port, engine="engine: {max_restarts: 1000, restart_backoff: 0.1}",
                                 parallel=_parallel(replicas))
                   if gemma else fake_engine_config(tmp, port, replicas, tokens, delay))
    run = Launched(["--config", str(cfg)], f"http://127.0.0.1:{port}", tmp / f"chaos-{port}.log")
    run.wait_ready(600)
    return run


def drain_run(run: Launched, requests: int, concurrency: int, sigterm_after: float) -> tuple[Report, int, dict]:
    """SIGTERM launch `sigterm_after` seconds into the load; (report, exit code, what was in flight).

    A request sent after the SIGTERM cannot be lost, only refused: by a 503 while the gateway drains, or,
    once it has stopped listening, by the connection itself (refused, or closed before any answer).
    Every request sent before the SIGTERM must end `ok`."""
    sent_at: list[float] = []

    async def go() -> list[Outcome]:
        async def term():
            await asyncio.sleep(sigterm_after)
            run.remember_tree()
            sent_at.append(time.perf_counter())
            run.proc.send_signal(signal.SIGTERM)
        t = asyncio.create_task(term())
        out = await load(run.url, "gemma", requests, concurrency, kinds=("openai_stream", "kserve_stream"))
        await t
        return out
    outcomes = asyncio.run(go())
    code = run.proc.wait(60)
    sigterm = sent_at[0]
    for o in outcomes:
        if o.started >= sigterm and o.result == "bad" and o.detail.startswith("connection"):
            o.result, o.detail = "refused", f"{o.detail} (the gateway had stopped listening)"
    before = [o for o in outcomes if o.started < sigterm]
    running = [o for o in before if o.started + o.seconds > sigterm]
    in_flight = {"sent_before_sigterm": len(before), "running_at_sigterm": len(running),
                 "running_at_sigterm_ok": sum(o.result == "ok" for o in running),
                 "sent_before_sigterm_not_ok": sum(o.result != "ok" for o in before)}
    return Report(outcomes), code, in_flight


def main(args) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="launcher-chaos-"))
    results = {}
    run = start(tmp, args.replicas, args.gemma, delay=0.0 if args.soak else 0.02)
    try:
        if args.drain:
            report, code, in_flight = drain_run(run, args.requests, args.concurrency, args.kill_every)
            results = {"drain": report.summary() | in_flight | {"exit_code": code, "left": run.leftovers()}}
        else:
            asyncio.run(load(run.url, "gemma", 4 * args.concurrency, args.concurrency))  # warm-up
            before = settle(run.proc.pid, run.url, args.concurrency)
            if args.soak:
                report = Report(asyncio.run(load(run.url, "gemma", args.soak, args.concurrency)))
            else:
                report = asyncio.run(chaos_run(run.url, "gemma", args.requests, args.concurrency, args.kill_every))
            report.before, report.after = before, settle(run.proc.pid, run.url, args.concurrency)
            results = {"soak" if args.soak else "chaos": report.summary()}
    finally:
        run.stop()
        run.kill_leftovers()
    print(json.dumps(results, indent=1))
    return 0


def register(sub) -> None:
    p = sub.add_parser("chaos", help="faults under load: engines killed, drain on SIGTERM, soak; nothing may hang")
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--kill-every", type=float, default=3.0, help="seconds between engine kills (--drain: SIGTERM "
                   "after this many seconds)")
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--soak", type=int, default=0, help="no faults: this many requests (use --concurrency 16)")
    p.add_argument("--drain", action="store_true", help="SIGTERM launch during the load instead of killing engines")
    p.add_argument("--gemma", action="store_true", help="llama-server with Gemma instead of the fake engine")
    p.set_defaults(func=main)
