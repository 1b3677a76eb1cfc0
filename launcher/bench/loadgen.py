"""A streaming load generator: N requests at concurrency C; TTFT, time per output token, tokens/s.

Counts SSE events instead of parsing JSON, so the client costs the shared CPU as little as it can.
"""
from __future__ import annotations

import asyncio
import json
import statistics
import struct
import time
from dataclasses import dataclass, field

import grpc
import httpx

from ..protocols.kserve import grpc_predict_v2_pb2 as pb
from ..protocols.kserve.service import Stub


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


def _openai_error(line: str) -> bool:
    return '"error"' in line


def _kserve_error(line: str) -> bool:
    return '"error_message":""' not in line.replace(" ", "")


def _typed_error(line: str) -> bool:  # Anthropic's and the Responses API's error events
    return '"type":"error"' in line.replace(" ", "")


def _any(line: str) -> bool:
    return True


async def one(client: httpx.AsyncClient, url: str, body: bytes, headers: dict, is_error=_openai_error,
              is_token=_any) -> Result:
    res = Result()
    start = time.perf_counter()
    try:
        async with client.stream("POST", url, content=body, headers=headers) as resp:
            if resp.status_code != 200:
                res.error = f"HTTP {resp.status_code}: {(await resp.aread())[:200].decode(errors='replace')}"
                return res
            async for line in resp.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                if is_error(line):
                    res.error = line[6:200]
                    continue
                if not is_token(line):
                    continue
                if res.ttft is None:
                    res.ttft = time.perf_counter() - start
                res.tokens += 1
    except httpx.HTTPError as exc:
        res.error = type(exc).__name__
    res.duration = time.perf_counter() - start
    return res


async def one_grpc(stub, request) -> Result:
    """One ModelStreamInfer call; every response but an error counts (the last one carries the finish reason,
    as the OpenAI and REST streams' last event does)."""
    res = Result()
    start = time.perf_counter()
    try:
        async for response in stub.ModelStreamInfer(iter([request])):
            if response.error_message:
                res.error = response.error_message[:200]
                continue
            if res.ttft is None:
                res.ttft = time.perf_counter() - start
            res.tokens += 1
    except grpc.RpcError as exc:
        res.error = str(exc.code())
    res.duration = time.perf_counter() - start
    return res


# The engine does the same work for every protocol: llama-server's own repeat_penalty (the KServe
# document's default of 1.1 costs Gemma's 262k-token vocabulary about 6% of its tokens/s).
SAME_SAMPLING = {"ignore_eos": True, "repeat_penalty": 1.0}


def _kserve_body(prompt: str, max_tokens: int) -> dict:
    return {"inputs": [{"name": "prompt", "datatype": "BYTES", "shape": [1], "data": [prompt]},
                       {"name": "max_tokens", "datatype": "INT64", "shape": [1], "data": [max_tokens]},
                       {"name": "temperature", "datatype": "FP32", "shape": [1], "data": [0.0]},
                       # an input, not a parameter: the built-in Python worker reads only inputs
                       {"name": "repeat_penalty", "datatype": "FP32", "shape": [1],
                        "data": [SAME_SAMPLING["repeat_penalty"]]}],
            "parameters": {"ignore_eos": SAME_SAMPLING["ignore_eos"]}}


def _grpc_request(model: str, prompt: str, max_tokens: int):
    request = pb.ModelInferRequest(model_name=model)
    request.parameters["ignore_eos"].bool_param = True
    request.parameters["repeat_penalty"].double_param = SAME_SAMPLING["repeat_penalty"]
    for name, datatype, raw in (("prompt", "BYTES", struct.pack("<I", len(prompt.encode())) + prompt.encode()),
                                ("max_tokens", "INT64", struct.pack("<q", max_tokens)),
                                ("temperature", "FP32", struct.pack("<f", 0.0))):
        request.inputs.add(name=name, datatype=datatype, shape=[1])
        request.raw_input_contents.append(raw)
    return request


async def run_load(base_url: str, model: str, concurrency: int, requests: int, *, max_tokens: int = 64,
                   prompt: str = "Write a short story about a robot learning to paint.", api_key: str | None = None,
                   progress=None, protocol: str = "openai", grpc_target: str | None = None,
                   keepalive: bool = False) -> Summary:
    """Streamed requests over `protocol`: openai (/v1/completions), chat (/v1/chat/completions), anthropic
    (/v1/messages), responses (/v1/responses), kserve (REST infer_stream) or grpc (ModelStreamInfer at
    `grpc_target`)."""
    headers = {"content-type": "application/json"}
    is_token = _any
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    if protocol == "kserve":
        url = f"{base_url.rstrip('/')}/v2/models/{model}/infer_stream"
        body, is_error = json.dumps(_kserve_body(prompt, max_tokens)).encode(), _kserve_error
    elif protocol == "anthropic":
        url = base_url.rstrip("/") + "/v1/messages"
        body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
                           "temperature": 0, "stream": True, "ignore_eos": True}).encode()
        is_error, is_token = _typed_error, lambda line: '"content_block_delta"' in line
    elif protocol == "responses":
        url = base_url.rstrip("/") + "/v1/responses"
        body = json.dumps({"model": model, "input": prompt, "max_output_tokens": max_tokens, "temperature": 0,
                           "stream": True, "ignore_eos": True}).encode()
        is_error, is_token = _typed_error, lambda line: '"response.output_text.delta"' in line
    elif protocol == "chat":
        url = base_url.rstrip("/") + "/v1/chat/completions"
        body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
                           "temperature": 0, "stream": True, "ignore_eos": True}).encode()
        is_error = _openai_error
    else:
        url = base_url.rstrip("/") + "/v1/completions"
        body = json.dumps({"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
                           "stream": True, "ignore_eos": True}).encode()
        is_error = _openai_error
    channel = grpc.aio.insecure_channel(grpc_target) if protocol == "grpc" else None
    stub = Stub(channel) if channel else None
    request = _grpc_request(model, prompt, max_tokens) if channel else None
    queue: asyncio.Queue = asyncio.Queue()
    for _ in range(requests):
        queue.put_nowait(None)
    results: list[Result] = []
    # keepalive: connections reused, as the openai SDK's pool does; else a new connection per request
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency if keepalive else 0)
    async with httpx.AsyncClient(timeout=httpx.Timeout(600, connect=10), limits=limits) as client:
        async def worker():
            while not queue.empty():
                queue.get_nowait()
                results.append(await (one_grpc(stub, request) if stub else one(client, url, body, headers, is_error, is_token)))
                if progress:
                    progress(len(results), requests)
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    if channel:
        await channel.close()
    ok = [r for r in results if not r.error]
    ttfts = [r.ttft for r in ok if r.ttft is not None]
    tpots = [(r.duration - r.ttft) / (r.tokens - 1) for r in ok if r.ttft is not None and r.tokens > 1]
    return Summary(concurrency, len(results), len(results) - len(ok), wall, sum(r.tokens for r in ok),
                   _pct(ttfts, 0.5), _pct(ttfts, 0.99), statistics.median(tpots) if tpots else float("nan"),
                   results)
