"""A streaming load generator: N requests at concurrency C; TTFT, time per output token, tokens/s.

Counts SSE events instead of parsing JSON, so the client costs the shared CPU as little as it can.
"""
from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class Result:
    ttft: float | None = None
    tokens: int = 0
    duration: float = 0.0
    error: str | None = None


@dataclass
class Summary:
    concurrency: int
    requests: int
    errors: int
    wall: float
    tokens: int
    ttft_p50: float
    ttft_p99: float
    tpot_p50: float          # seconds per output token after the first
    results: list = field(default_factory=list, repr=False)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall if self.wall else 0.0

    def row(self) -> dict:
        return {"concurrency": self.concurrency, "requests": self.requests, "errors": self.errors,
                "tokens_per_s": round(self.tokens_per_s, 2), "ttft_p50_ms": round(self.ttft_p50 * 1000, 1),
                "ttft_p99_ms": round(self.ttft_p99 * 1000, 1), "tpot_p50_ms": round(self.tpot_p50 * 1000, 2)}


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def one(client: httpx.AsyncClient, url: str, body: bytes, headers: dict) -> Result:
    res = Result()
    start = time.perf_counter()
    try:
        async with client.stream("POST", url, content=body, headers=headers) as resp:
            if resp.status_code != 200:
                res.error = f"HTTP {resp.status_code}"
                await resp.aread()
                return res
            async for line in resp.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                if '"error"' in line:
                    res.error = line[6:200]
                    continue
                if res.ttft is None:
                    res.ttft = time.perf_counter() - start
                res.tokens += 1
    except httpx.HTTPError as exc:
        res.error = type(exc).__name__
    res.duration = time.perf_counter() - start
    return res


async def run_load(base_url: str, model: str, concurrency: int, requests: int, *, max_tokens: int = 64,
                   prompt: str = "Write a short story about a robot learning to paint.", api_key: str | None = None,
                   progress=None) -> Summary:
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
                       "stream": True, "ignore_eos": True}).encode()
    headers = {"content-type": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    url = base_url.rstrip("/") + "/v1/completions"
    queue: asyncio.Queue = asyncio.Queue()
    for _ in range(requests):
        queue.put_nowait(None)
    results: list[Result] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=httpx.Timeout(600, connect=10), limits=limits) as client:
        async def worker():
            while not queue.empty():
                queue.get_nowait()
                results.append(await one(client, url, body, headers))
                if progress:
                    progress(len(results), requests)
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    ok = [r for r in results if not r.error]
    ttfts = [r.ttft for r in ok if r.ttft is not None]
    tpots = [(r.duration - r.ttft) / (r.tokens - 1) for r in ok if r.ttft is not None and r.tokens > 1]
    return Summary(concurrency, len(results), len(results) - len(ok), wall, sum(r.tokens for r in ok),
                   _pct(ttfts, 0.5), _pct(ttfts, 0.99), statistics.median(tpots) if tpots else float("nan"),
                   results)
