"""Tier 1: gateway + supervisor against a fake engine, for what a real engine cannot do on cue."""
import asyncio
import json
import os
import signal
import threading

import httpx
import pytest

from launcher.testing.launched import wait_for
from tests.fakes.harness import gateway

CHAT = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}


def sse_events(text: str) -> list[str]:
    return [ln[6:] for ln in text.splitlines() if ln.startswith("data: ")]


def test_stream_passes_events_through_and_ends_with_done(tmp_path):
    with gateway(tmp_path, ["--tokens", "4"]) as gw:
        r = httpx.post(gw.url + "/v1/chat/completions", json=CHAT | {"stream": True})
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-accel-buffering"] == "no"
        events = sse_events(r.text)
        assert [json.loads(e)["choices"][0]["delta"].get("content") for e in events[:-1]] == \
            ["t0 ", "t1 ", "t2 ", "t3 ", None]
        assert json.loads(events[-2])["choices"][0]["finish_reason"] == "length" and events[-1] == "[DONE]"


def test_truncated_upstream_stream_is_an_error_not_a_normal_stop(tmp_path):
    with gateway(tmp_path, ["--tokens", "3", "--truncate"]) as gw:
        r = httpx.post(gw.url + "/v1/chat/completions", json=CHAT | {"stream": True})
        events = sse_events(r.text)
        assert events[-1] == "[DONE]"
        err = json.loads(events[-2])["error"]
        assert err["code"] == "stream_truncated"


def test_engine_crash_mid_stream_gives_error_event_and_engine_restarts(tmp_path):
    with gateway(tmp_path, ["--tokens", "6", "--crash-after", "2", "--delay", "0.05"]) as gw:
        pid_before = gw.runners[0].upstreams[0].process.pid
        r = httpx.post(gw.url + "/v1/chat/completions", json=CHAT | {"stream": True}, timeout=10)
        events = sse_events(r.text)
        assert events[-1] == "[DONE]"
        assert "error" in json.loads(events[-2])
        assert wait_for(lambda: gw.runners[0].state == "ready" and gw.runners[0].restarts == 1)
        assert gw.runners[0].upstreams[0].process.pid != pid_before
        models = httpx.get(gw.url + "/v1/models").json()["data"][0]
        assert models["restarts"] == 1 and models["state"] == "ready"
        assert 'launcher_engine_restarts_total{model="fake"} 1.0' in httpx.get(gw.url + "/metrics").text


def test_disconnect_mid_stream_cancels_upstream(tmp_path):
    with gateway(tmp_path, ["--tokens", "200", "--delay", "0.05"]) as gw:
        with httpx.stream("POST", gw.url + "/v1/chat/completions", json=CHAT | {"stream": True}) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    break  # got one token; hang up
        assert wait_for(lambda: gw.stats()["cancelled"] == 1, timeout=2.0)
        assert gw.runners[0].upstreams[0].in_flight == 0


def test_disconnect_during_non_streamed_request_cancels_upstream(tmp_path):
    with gateway(tmp_path, ["--tokens", "100", "--delay", "0.05"]) as gw:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(gw.url + "/v1/chat/completions", json=CHAT, timeout=0.5)
        assert wait_for(lambda: gw.runners[0].upstreams[0].in_flight == 0, timeout=2.0)


def test_unknown_model_is_404_model_not_found(tmp_path):
    with gateway(tmp_path) as gw:
        r = httpx.post(gw.url + "/v1/chat/completions", json=CHAT | {"model": "gpt-4"})
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "model_not_found"
        assert gw.stats()["requests"] == 0


@pytest.mark.parametrize("body,fragment", [(b"{not json", "not valid JSON"), (b"[1, 2]", "JSON object"),
                                           (b'{"model": 5}', "must be a string")])
def test_malformed_body_is_400_envelope(tmp_path, body, fragment):
    with gateway(tmp_path) as gw:
        r = httpx.post(gw.url + "/v1/completions", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400
        err = r.json()["error"]
        assert err["type"] == "invalid_request_error" and fragment in err["message"]


def test_model_may_be_named_by_file_name(tmp_path):
    with gateway(tmp_path) as gw:
        assert httpx.post(gw.url + "/v1/completions", json={"model": "fake.gguf", "prompt": "x"}).status_code == 200


def test_api_keys_bearer_and_x_api_key_and_public_health(tmp_path):
    with gateway(tmp_path, keys=("s3cret", "other")) as gw:
        url = gw.url + "/v1/chat/completions"
        assert httpx.post(url, json=CHAT).status_code == 401
        assert httpx.post(url, json=CHAT, headers={"Authorization": "Bearer wrong"}).json()["error"]["code"] == \
            "invalid_api_key"
        assert httpx.post(url, json=CHAT, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert httpx.post(url, json=CHAT, headers={"X-Api-Key": "other"}).status_code == 200
        assert httpx.get(gw.url + "/health").status_code == 200
        assert httpx.get(gw.url + "/v1/models").status_code == 401
        bodies = json.dumps(gw.stats()["bodies"])
        assert "s3cret" not in bodies


def test_a_request_waits_for_a_restarting_engine_and_a_failed_one_is_503(tmp_path):
    with gateway(tmp_path) as gw:
        os.kill(gw.runners[0].upstreams[0].process.pid, signal.SIGKILL)
        assert wait_for(lambda: gw.runners[0].state != "ready", timeout=5)
        assert httpx.get(gw.url + "/ready").status_code == 503
        r = httpx.post(gw.url + "/v1/chat/completions", json=CHAT, timeout=30)
        assert r.status_code == 200 and gw.runners[0].restarts == 1  # it waited in line for the restart
    text = "model: fake.gguf\nmodel_alias: fake\nengine: {max_restarts: 0, start_timeout: 20}\n"
    with gateway(tmp_path, text=text) as gw:
        os.kill(gw.runners[0].upstreams[0].process.pid, signal.SIGKILL)
        assert wait_for(lambda: gw.runners[0].state == "failed", timeout=5)
        r = httpx.post(gw.url + "/v1/chat/completions", json=CHAT)
        assert r.status_code == 503 and r.headers["retry-after"]
        assert r.json()["error"]["code"] == "model_unavailable"


def test_generation_defaults_apply_only_when_absent(tmp_path):
    with gateway(tmp_path, extra="defaults: {temperature: 0.2, max_tokens: 7, stop: END}\n") as gw:
        httpx.post(gw.url + "/v1/completions", json={"model": "fake", "prompt": "a", "max_tokens": 3})
        body = gw.stats()["bodies"][-1]
        assert body["max_tokens"] == 3 and body["temperature"] == 0.2 and body["stop"] == ["END"]


def test_upstream_error_keeps_status_and_gets_string_code(tmp_path):
    with gateway(tmp_path, ["--error-status", "400"]) as gw:
        r = httpx.post(gw.url + "/v1/chat/completions", json=CHAT)
        assert r.status_code == 400
        assert r.json()["error"] == {"message": "fake engine refuses", "type": "invalid_request_error",
                                     "param": None, "code": "invalid_request"}


def test_a_request_to_a_loading_engine_waits_up_to_load_timeout(tmp_path):
    with gateway(tmp_path, ["--load-seconds", "1.5"], wait_ready=False) as gw:
        assert httpx.get(gw.url + "/ready").status_code == 503
        assert httpx.post(gw.url + "/v1/chat/completions", json=CHAT, timeout=30).status_code == 200
    with gateway(tmp_path, ["--load-seconds", "6"], wait_ready=False, extra="gateway: {load_timeout: 0.5}\n") as gw:
        r = httpx.post(gw.url + "/v1/chat/completions", json=CHAT, timeout=30)
        assert r.status_code == 503 and r.headers["retry-after"]
        assert "is starting for 0.5s" in r.json()["error"]["message"]


def test_embeddings_forwarded_without_generation_defaults(tmp_path):
    with gateway(tmp_path, extra="defaults: {max_tokens: 9}\n") as gw:
        r = httpx.post(gw.url + "/v1/embeddings", json={"model": "fake", "input": "hello"})
        assert r.status_code == 200 and r.json()["data"][0]["embedding"] == [0.1, 0.2]
        assert "max_tokens" not in gw.stats()["bodies"][-1]


def test_cors_preflight_allows_configured_origin_only(tmp_path):
    with gateway(tmp_path, extra="gateway: {cors_origins: ['https://app.example']}\n") as gw:
        ok = httpx.options(gw.url + "/v1/chat/completions", headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
        assert ok.headers.get("access-control-allow-origin") == "https://app.example"
        bad = httpx.options(gw.url + "/v1/chat/completions", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in bad.headers


def test_metrics_count_requests_errors_tokens_and_ttft(tmp_path):
    with gateway(tmp_path, ["--tokens", "3"]) as gw:
        httpx.post(gw.url + "/v1/chat/completions", json=CHAT | {"stream": True})
        httpx.post(gw.url + "/v1/chat/completions", json=CHAT)
        httpx.post(gw.url + "/v1/chat/completions", json=CHAT | {"model": "nope"})
        text = httpx.get(gw.url + "/metrics").text
        assert 'launcher_requests_total{endpoint="chat",model="fake",protocol="openai",status="200"} 2.0' in text
        # streamed: one per event before [DONE] but the last (3); non-streamed: from usage (3)
        assert 'launcher_completion_tokens_total{model="fake"} 6.0' in text
        assert 'launcher_time_to_first_byte_seconds_count{model="fake"} 1.0' in text
        assert 'launcher_model_ready{model="fake"} 1.0' in text


def test_overload_is_429_and_the_line_is_first_come_first_served(tmp_path):
    """One slot, two may wait: the fourth request is refused at once; those in line reach the engine in
    the order they came."""
    with gateway(tmp_path, ["--tokens", "10", "--delay", "0.1"], extra="gateway: {max_queue: 2}\n") as gw:
        url, results = gw.url + "/v1/chat/completions", {}

        def call(i):
            results[i] = httpx.post(url, json={"messages": [{"role": "user", "content": f"request {i}"}],
                                               "stream": i == 0}, timeout=60)

        def queued() -> str:
            line = [ln for ln in httpx.get(gw.url + "/metrics").text.splitlines()
                    if ln.startswith('launcher_requests_queued{model="fake"}')]
            return line[0].split()[-1] if line else ""
        threads = []
        for i, wanted in ((0, None), (1, "1.0"), (2, "2.0")):
            threads.append(threading.Thread(target=call, args=(i,)))
            threads[-1].start()
            if wanted is None:
                assert wait_for(lambda: gw.runners[0].upstreams[0].in_flight == 1, 10)
            else:
                assert wait_for(lambda: queued() == wanted, 10), queued()
        refused = httpx.post(url, json=CHAT)
        kserve = httpx.post(gw.url + "/v2/models/fake/infer", json={"inputs": [
            {"name": "prompt", "datatype": "BYTES", "shape": [1], "data": ["x"]}]})
        for t in threads:
            t.join(60)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "queue_full" and refused.json()["error"]["type"] == "rate_limit_error"
        assert kserve.status_code == 429 and "gateway.max_queue" in kserve.json()["error"]
        assert [results[i].status_code for i in range(3)] == [200, 200, 200]
        order = [b["messages"][0]["content"] for b in gw.stats()["bodies"] if "messages" in b]
        assert order == ["request 0", "request 1", "request 2"]
        assert 'launcher_requests_refused_total{model="fake",reason="queue_full"} 2.0' in \
            httpx.get(gw.url + "/metrics").text


def test_streams_handed_a_freed_slot_never_meet_a_stale_connection(tmp_path):
    """The engine closes each connection after a streamed answer, as llama-server does; the next request in
    line takes the freed slot at that very moment. None may fail (they did, as 503s, when the connection went
    back to the pool)."""
    with gateway(tmp_path, ["--tokens", "3", "--slots", "2"], slots=2) as gw:
        async def load() -> list[int]:
            async with httpx.AsyncClient(timeout=60) as client:
                async def worker() -> list[int]:
                    out = []
                    for _ in range(6):
                        async with client.stream("POST", gw.url + "/v1/chat/completions",
                                                 json=CHAT | {"stream": True}) as resp:
                            await resp.aread()
                            out.append(resp.status_code)
                    return out
                return [s for w in await asyncio.gather(*(worker() for _ in range(8))) for s in w]
        statuses = asyncio.run(load())
        assert statuses == [200] * 48
        assert gw.stats()["dropped"] == 0  # no request was sent on a connection the engine was closing


def test_a_long_stream_to_a_slow_reader_takes_the_fast_path_and_loses_nothing(tmp_path, monkeypatch):
    """The fast path (upstream socket callback -> client socket) under back-pressure: a client that reads
    slowly at first gets every event, in order, and the engine is not read faster than the client reads."""
    from launcher.gateway import direct
    writes, drains = [], []
    original, original_drain = direct.DirectBody.write, direct.DirectBody.drain
    monkeypatch.setattr(direct.DirectBody, "write", lambda self, data: (writes.append(len(data)), original(self, data)))
    monkeypatch.setattr(direct.DirectBody, "drain", lambda self: (drains.append(1), original_drain(self))[1])
    with gateway(tmp_path, ["--tokens", "100000"]) as gw:
        with httpx.stream("POST", gw.url + "/v1/chat/completions", json=CHAT | {"stream": True}, timeout=60) as r:
            lines = []
            for i, line in enumerate(r.iter_lines()):
                if i == 5:
                    threading.Event().wait(2.0)   # stalls: the socket buffers fill, the relay must wait
                if line.startswith("data: "):
                    lines.append(line[6:])
    contents = [json.loads(e)["choices"][0]["delta"].get("content") for e in lines[:-2]]
    assert contents == [f"t{i} " for i in range(100000)] and lines[-1] == "[DONE]"
    assert sum(writes) > 100000 * 20  # the events went through the direct writer,
    assert drains                     # which waited for the client at least once
