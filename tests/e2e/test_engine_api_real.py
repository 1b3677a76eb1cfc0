"""Tier 2: the engine's whole API through the gateway, against real Gemma.

A differential bank sends the same requests (OpenAI, Anthropic Messages, Responses, llama-server's own routes;
streamed and not; malformed ones too) to the engine directly and through the gateway, at temperature 0, one
at a time, and compares status and body after dropping what changes between two calls (ids, timestamps,
timings, prompt-cache counts). The official anthropic and openai SDKs then drive the new routes with keys."""
from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest

from launcher.net import free_ports
from launcher.testing.launched import Launched
from tests.e2e.conftest import GEMMA, ROOT

KEY, ADMIN = "sk-engine-api", "sk-engine-admin"
VOLATILE = {"id", "created", "created_at", "timings", "system_fingerprint", "tokens_cached", "cached_tokens",
            "prompt_tokens_details", "id_slot", "t_prompt_processing", "t_token_generation", "prompt_ms",
            "predicted_ms", "cache_n", "msg_id", "item_id", "response_id", "output_index",
            "cache_read_input_tokens", "input_tokens_details", "completed_at"}
CHAT = [{"role": "user", "content": "Name a colour."}]
# (method, path, body, streamed); `model` is filled in; each is answered alike by the engine and the gateway
BANK = [
    ("POST", "/v1/chat/completions", {"messages": CHAT, "max_tokens": 8, "temperature": 0}, False),
    ("POST", "/v1/chat/completions", {"messages": CHAT, "max_tokens": 8, "temperature": 0, "stream": True}, True),
    ("POST", "/v1/chat/completions", {"messages": CHAT, "max_tokens": 8, "temperature": 0, "stream": True,
                                      "stream_options": {"include_usage": True}}, True),
    ("POST", "/v1/chat/completions", {"messages": CHAT, "max_completion_tokens": 6, "temperature": 0}, False),
    ("POST", "/v1/chat/completions", {"messages": CHAT, "max_tokens": 4, "temperature": 0, "logprobs": True,
                                      "top_logprobs": 2}, False),
    ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
                                      "max_tokens": 4, "temperature": 0}, False),
    ("POST", "/v1/chat/completions", {"messages": CHAT, "max_tokens": 8, "temperature": 0,
                                      "response_format": {"type": "json_object"}}, False),
    ("POST", "/v1/chat/completions", {"messages": CHAT, "max_tokens": 6, "temperature": 0,
                                      "grammar": "root ::= \"red\" | \"blue\""}, False),
    ("POST", "/v1/chat/completions", {"messages": "not a list", "max_tokens": 4}, False),
    ("POST", "/v1/completions", {"prompt": "The sky is", "max_tokens": 8, "temperature": 0}, False),
    ("POST", "/v1/completions", {"prompt": "The sky is", "max_tokens": 8, "temperature": 0, "stream": True}, True),
    ("POST", "/v1/completions", {"prompt": ["One", "Two"], "max_tokens": 4, "temperature": 0}, False),
    ("POST", "/v1/completions", {"prompt": [2, 651, 7217, 603], "max_tokens": 4, "temperature": 0}, False),
    ("POST", "/v1/messages", {"messages": CHAT, "max_tokens": 8, "temperature": 0}, False),
    ("POST", "/v1/messages", {"messages": CHAT, "max_tokens": 8, "temperature": 0, "stream": True}, True),
    ("POST", "/v1/messages", {"messages": CHAT, "max_tokens": 8, "temperature": 0, "system": "Be brief."}, False),
    ("POST", "/v1/messages", {"messages": CHAT, "max_tokens": 8, "temperature": 0, "system": "Be brief.",
                              "stream": True}, True),
    ("POST", "/v1/messages", {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
                              "max_tokens": 6, "temperature": 0}, False),
    ("POST", "/v1/messages", {"messages": CHAT, "max_tokens": 6, "temperature": 0, "stop_sequences": ["."]}, False),
    ("POST", "/v1/messages/count_tokens", {"messages": CHAT}, False),
    ("POST", "/v1/messages/count_tokens", {"messages": CHAT, "system": "Be brief."}, False),
    ("POST", "/v1/responses", {"input": "Name a colour.", "max_output_tokens": 8, "temperature": 0}, False),
    ("POST", "/v1/responses", {"input": "Name a colour.", "max_output_tokens": 8, "temperature": 0,
                               "stream": True}, True),
    ("POST", "/v1/responses", {"input": [{"role": "user", "content": "Hi"}], "instructions": "Be brief.",
                               "max_output_tokens": 6, "temperature": 0}, False),
    ("POST", "/v1/responses", {"input": [{"role": "user", "content": "Hi"}], "max_output_tokens": 6,
                               "temperature": 0, "stream": True}, True),
    ("POST", "/completion", {"prompt": "The sky is", "n_predict": 8, "temperature": 0}, False),
    ("POST", "/completion", {"prompt": "The sky is", "n_predict": 8, "temperature": 0, "stream": True}, True),
    ("POST", "/completion", {"prompt": "Once", "n_predict": 4, "temperature": 0, "n_probs": 2}, False),
    ("POST", "/completion", {"prompt": "Once", "n_predict": 4, "temperature": 0, "stop": [" "]}, False),
    ("POST", "/tokenize", {"content": "Hello world"}, False),
    ("POST", "/tokenize", {"content": "Hello world", "add_special": True}, False),
    ("POST", "/tokenize", {"content": "Hello world", "with_pieces": True}, False),
    ("POST", "/detokenize", {"tokens": [9259, 1902]}, False),
    ("POST", "/detokenize", {"tokens": []}, False),
    ("POST", "/apply-template", {"messages": CHAT}, False),
    ("POST", "/apply-template", {"messages": [{"role": "system", "content": "Be brief."}] + CHAT}, False),
    ("POST", "/infill", {"input_prefix": "def add(a, b):\n    ", "input_suffix": "\n", "n_predict": 4}, False),
    ("POST", "/v1/rerank", {"query": "colour", "documents": ["red", "sky"]}, False),
    ("POST", "/v1/reranking", {"query": "colour", "documents": ["red", "sky"]}, False),
    ("GET", "/props", None, False),
    ("POST", "/v1/embeddings", {"input": "hello"}, False),
    ("POST", "/tokenize", {"no_content": 1}, False),
]


@pytest.fixture(scope="module")
def gemma_gateway(tmp_path_factory, built, gemma):
    tmp = tmp_path_factory.mktemp("engine-api")
    port = next(free_ports())
    (tmp / "keys").write_text(KEY + "\n")
    cfg = tmp / "gemma.yaml"
    cfg.write_text(GEMMA.replace("PORT", str(port)) +
                   f"gateway: {{api_key_file: {tmp / 'keys'}, admin_key_env: ENGINE_API_ADMIN}}\n")
    run = Launched(["--config", str(cfg)], f"http://127.0.0.1:{port}", tmp / "launch.log",
                   {"ENGINE_API_ADMIN": ADMIN}, str(ROOT))
    run.wait_ready()
    engine = httpx.get(run.url + "/v1/models", headers={"authorization": f"Bearer {KEY}"}).json()
    yield run, engine["data"][0]["engines"][0]["url"]
    run.stop(timeout=30)
    left = run.leftovers()
    run.kill_leftovers()
    assert not left


def _stable(value):
    """The answer without what differs between two calls."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _events(text: str) -> list:
    out = []
    for line in text.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            out.append(_stable(json.loads(line[6:])))
        elif line.startswith("event: "):
            out.append(line)
    return out


def _call(base: str, method: str, path: str, body, headers: dict):
    resp = httpx.request(method, base + path, json=body, headers=headers, timeout=120)
    if "text/event-stream" in resp.headers.get("content-type", ""):
        return resp.status_code, _events(resp.text)
    try:
        return resp.status_code, _stable(resp.json())
    except ValueError:
        return resp.status_code, resp.text


@pytest.mark.parametrize("i", range(len(BANK)), ids=lambda i: f"{BANK[i][1]}-{i}")
def test_the_gateway_answers_as_the_engine_does(gemma_gateway, i):
    run, engine = gemma_gateway
    method, path, body, streamed = BANK[i]
    if body is not None:
        body = {"model": "gemma", **body}
    direct = _call(engine, method, path, body, {})
    gateway = _call(run.url, method, path + ("?model=gemma" if method == "GET" else ""), body,
                    {"authorization": f"Bearer {KEY}"})
    if direct[0] >= 400:  # an error: the same status, in the route's own envelope at the gateway
        assert gateway[0] == direct[0] or (direct[0] == 500 and gateway[0] == 400), (direct, gateway)
        if path.startswith("/v1/messages"):
            assert gateway[1]["type"] == "error" and gateway[1]["error"]["message"]
        else:
            assert gateway[1]["error"]["message"]
        return
    assert gateway == direct
    assert len(BANK) >= 40


def test_anthropic_sdk_through_the_gateway_with_a_key(gemma_gateway):
    run, _ = gemma_gateway
    client = anthropic.Anthropic(base_url=run.url, api_key=KEY, max_retries=0)
    greedy = {"temperature": 0}  # llama-server's own sampling field, passed as it is
    message = client.messages.create(model="gemma", max_tokens=16, messages=CHAT, extra_body=greedy)
    assert message.type == "message" and message.content[0].text.strip()
    assert "<|im_" not in message.content[0].text and "<start_of_turn>" not in message.content[0].text
    with client.messages.stream(model="gemma", max_tokens=16, messages=CHAT, extra_body=greedy) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == final.content[0].text == message.content[0].text
    count = client.messages.count_tokens(model="gemma", messages=CHAT)
    assert count.input_tokens > 0
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=run.url, api_key="wrong", max_retries=0).messages.create(
            model="gemma", max_tokens=4, messages=CHAT)
    with pytest.raises(anthropic.NotFoundError) as err:
        client.messages.create(model="no-such-model", max_tokens=4, messages=CHAT)
    assert err.value.body["type"] == "error" and err.value.body["error"]["type"] == "not_found_error"


def test_openai_responses_through_the_gateway(gemma_gateway):
    run, _ = gemma_gateway
    client = openai.OpenAI(base_url=run.url + "/v1", api_key=KEY, max_retries=0)
    whole = client.responses.create(model="gemma", input="Name a colour.", max_output_tokens=16, temperature=0)
    assert whole.output_text.strip() and "<|im_" not in whole.output_text
    deltas, done = [], None
    for event in client.responses.create(model="gemma", input="Name a colour.", max_output_tokens=16,
                                         temperature=0, stream=True):
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
        elif event.type == "response.completed":
            done = event.response
    assert "".join(deltas) == whole.output_text and done is not None


def test_the_readmes_chat_example_prints_text_not_template_tokens(gemma_gateway, capsys):
    """The README's streamed chat example, as written but for the address, model name and key: the embedded
    Gemma has no chat template in its GGUF, so launcher names llama-server's built-in `gemma` one."""
    run, _ = gemma_gateway
    readme = (ROOT / "README.md").read_text()
    code = readme.split("```python\nfrom openai import OpenAI\n", 1)[1].split("```", 1)[0]
    code = ("from openai import OpenAI\n" + code).replace("http://127.0.0.1:8080/v1", run.url + "/v1")
    exec(code.replace('"gemma3-270m"', '"gemma"').replace('api_key="none"', f'api_key="{KEY}"'), {})
    text = capsys.readouterr().out
    assert text.strip() and "<|im_end|>" not in text and "<|im_start|>" not in text and "<start_of_turn>" not in text


def test_native_routes_keys_slots_and_the_upstream_passthrough(gemma_gateway):
    run, _ = gemma_gateway
    user, admin = {"authorization": f"Bearer {KEY}"}, {"x-api-key": ADMIN}
    assert httpx.post(run.url + "/tokenize", json={"content": "hi"}).status_code == 401
    assert httpx.get(run.url + "/props", headers=user).json()["chat_template"]  # the only model: no ?model=
    assert httpx.get(run.url + "/slots", headers=user).status_code == 401  # slots show prompts: the admin's
    assert isinstance(httpx.get(run.url + "/slots", headers=admin).json(), list)
    assert httpx.get(run.url + "/upstream/gemma/health", headers=user).status_code == 401
    assert httpx.get(run.url + "/upstream/gemma/health", headers=admin).json() == {"status": "ok"}
    assert httpx.get(run.url + "/upstream/nope/health", headers=admin).status_code == 404
    streamed = httpx.post(run.url + "/completion", headers=user, timeout=60,
                          json={"prompt": "The sky is", "n_predict": 4, "stream": True})
    assert streamed.headers["content-type"].startswith("text/event-stream") and '"stop":true' in streamed.text


def test_the_console_answers_with_and_without_the_slash(gemma_gateway):
    run, _ = gemma_gateway
    for path in ("/ui", "/ui/"):
        resp = httpx.get(run.url + path)
        assert resp.status_code == 200 and "<html" in resp.text.lower(), path
