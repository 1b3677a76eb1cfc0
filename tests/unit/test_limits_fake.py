"""Tier 1: limits against hostile or broken clients, and the drain, over fake engines."""
import asyncio
import json
import socket
import threading
import time

import httpx

from launcher.protocols.envelopes import normalize_upstream_error
from launcher.testing.launched import wait_for
from tests.fakes.harness import gateway

CHAT = {"messages": [{"role": "user", "content": "hi"}]}
LIMITS = "n_ctx: 512\ngateway: {max_body_bytes: 2048, body_timeout: 0.5, header_timeout: 0.5, drain_timeout: 20}\n"


def raw_socket(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def read_all(sock: socket.socket) -> bytes:
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def test_bodies_over_the_limit_are_413_in_each_family(tmp_path):
    with gateway(tmp_path, extra=LIMITS) as gw:
        big = {"messages": [{"role": "user", "content": "x" * 4000}]}
        r = httpx.post(gw.url + "/v1/chat/completions", json=big)
        assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
        r = httpx.post(gw.url + "/v2/models/fake/infer", json={"inputs": [], "pad": "x" * 4000})
        assert r.status_code == 413 and "max_body_bytes" in r.json()["error"]

        def chunks():  # no Content-Length: counted as it arrives
            for _ in range(10):
                yield b" " * 500
        r = httpx.post(gw.url + "/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert httpx.post(gw.url + "/v1/chat/completions", json=CHAT).status_code == 200


def test_slow_clients_are_cut_off(tmp_path):
    with gateway(tmp_path, extra=LIMITS) as gw:
        sock = raw_socket(gw.url)  # headers that never end (slowloris)
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        assert read_all(sock) == b"" and time.monotonic() - started < 5
        sock = raw_socket(gw.url)  # a body that stalls
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"messages\"")
        answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer
        assert httpx.post(gw.url + "/v1/chat/completions", json=CHAT).status_code == 200


def test_max_tokens_is_capped_by_the_context_and_a_long_prompt_is_a_400(tmp_path):
    with gateway(tmp_path, extra=LIMITS) as gw:
        httpx.post(gw.url + "/v1/completions", json={"prompt": "a", "max_tokens": 100000})
        assert gw.stats()["bodies"][-1]["max_tokens"] == 512
        httpx.post(gw.url + "/v1/completions", json={"prompt": "a", "max_tokens": 7})
        assert gw.stats()["bodies"][-1]["max_tokens"] == 7
        httpx.post(gw.url + "/v2/models/fake/infer", json={"inputs": [
            {"name": "prompt", "datatype": "BYTES", "shape": [1], "data": ["a"]},
            {"name": "max_tokens", "datatype": "INT64", "shape": [1], "data": [99999]}]})
        assert gw.stats()["bodies"][-1]["max_tokens"] == 512
    # what llama-server answers for a prompt longer than the context (measured), as clients get it
    engine = (b'{"error":{"code":400,"message":"request (1202 tokens) exceeds the available context size (256 tokens),'
              b' try increasing it","type":"exceed_context_size_error","n_prompt_tokens":1202,"n_ctx":256}}')
    assert normalize_upstream_error(400, engine)["error"] == {
        "message": "request (1202 tokens) exceeds the available context size (256 tokens), try increasing it",
        "type": "invalid_request_error", "param": None, "code": "context_length_exceeded"}


def test_drain_finishes_running_streams_and_refuses_new_requests(tmp_path):
    with gateway(tmp_path, ["--tokens", "30", "--delay", "0.05"], extra=LIMITS) as gw:
        lines: list[str] = []

        def stream():
            with httpx.stream("POST", gw.url + "/v1/chat/completions", json={**CHAT, "stream": True},
                              timeout=30) as resp:
                lines.extend(ln for ln in resp.iter_lines() if ln)
        streamer = threading.Thread(target=stream)
        streamer.start()
        assert wait_for(lambda: gw.runners[0].upstreams[0].in_flight == 1, 10)
        drained = asyncio.run_coroutine_threadsafe(gw.app.state.drain.run(), gw.loop)
        assert wait_for(lambda: gw.app.state.drain.draining, 5)
        refused = httpx.post(gw.url + "/v1/chat/completions", json=CHAT)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "shutting_down"
        assert refused.headers["connection"] == "close" and refused.headers["retry-after"]
        assert httpx.post(gw.url + "/v2/models/fake/infer", json={}).json()["error"].startswith("the gateway is")
        assert httpx.get(gw.url + "/health").status_code == 200   # alive, just not taking work
        assert httpx.get(gw.url + "/ready").status_code == 503
        streamer.join(30)
        assert drained.result(30) is True
        assert lines[-1] == "data: [DONE]" and len(lines) == 32  # 30 tokens, the finish chunk, [DONE]


def test_bench_middleware_reports_every_layer(run_launch):
    res = run_launch("bench", "middleware", "--requests", "200", "--rounds", "1", "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout[res.stdout.index("{"):])
    assert len(report) == 4 and all(set(r) == {"per_request_us", "per_chunk_us"} for r in report.values())
