"""Tier 1, over the fake engine: the Anthropic, Responses and llama-server streams take the OpenAI stream's
fast path (the engine's bytes pass through), are counted, and a stream the engine cuts short ends with an
error event in that family's own shape."""
import json

import httpx
import pytest

from tests.fakes.harness import gateway

MESSAGES = {"model": "fake", "max_tokens": 5, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
RESPONSES = {"model": "fake", "max_output_tokens": 5, "stream": True, "input": "hi"}
COMPLETION = {"model": "fake", "n_predict": 5, "stream": True, "prompt": "hi"}


def events(text: str) -> list[tuple[str | None, dict]]:
    out, name = [], None
    for line in text.splitlines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            out.append((name, json.loads(line[6:])))
            name = None
    return out


@pytest.mark.parametrize("path,body,last,delta", [
    ("/v1/messages", MESSAGES, "message_stop", "content_block_delta"),
    ("/v1/responses", RESPONSES, "response.completed", "response.output_text.delta"),
    ("/completion", COMPLETION, None, None),
], ids=["anthropic", "responses", "llama"])
def test_streams_of_every_family_pass_through_whole(tmp_path, path, body, last, delta):
    with gateway(tmp_path) as gw:
        resp = httpx.post(gw.url + path, json=body, timeout=30)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        got = events(resp.text)
        if last:
            assert got[-1][0] == last and sum(name == delta for name, _ in got) == 5
        else:
            assert got[-1][1]["stop"] is True and len(got) == 6
        metrics = httpx.get(gw.url + "/metrics").text
        assert f'endpoint="{path.rsplit("/", 1)[1] if path != "/completion" else "completion"}"' in metrics


@pytest.mark.parametrize("path,body,check", [
    ("/v1/messages", MESSAGES, lambda name, data: name == "error" and data["error"]["type"] == "api_error"),
    ("/v1/responses", RESPONSES, lambda name, data: name == "error" and data["code"] == "stream_truncated"),
    ("/completion", COMPLETION, lambda name, data: data["error"]["code"] == "stream_truncated"),
], ids=["anthropic", "responses", "llama"])
def test_a_stream_the_engine_cuts_short_ends_with_the_familys_error_event(tmp_path, path, body, check):
    with gateway(tmp_path, ["--truncate"]) as gw:
        got = events(httpx.post(gw.url + path, json=body, timeout=30).text)
        assert check(*got[-1]), got[-1]
        assert "[DONE]" not in json.dumps(got)  # no OpenAI terminator in another family's stream
