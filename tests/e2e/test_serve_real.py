"""Tier 2: `launch --config` with real llama-server and Gemma, driven by the official openai SDK."""
import os
import signal
import threading
import time

import httpx
import openai
import pytest

from launcher.net import free_ports
from launcher.supervise.proctree import alive
from launcher.testing.launched import wait_for
from tests.e2e.conftest import GEMMA

PROMPT = "The three primary colors are"


def client(run, key="none") -> openai.OpenAI:
    return openai.OpenAI(base_url=run.url + "/v1", api_key=key, max_retries=0, timeout=60)


def test_chat_and_completions_streamed_and_not_with_usage(launch):
    run = launch(GEMMA)
    c = client(run)
    assert [m.id for m in c.models.list().data] == ["gemma"]

    chat = c.chat.completions.create(model="gemma", messages=[{"role": "user", "content": "Say hi"}],
                                     max_tokens=8, temperature=0)
    assert chat.choices[0].message.content and chat.usage.completion_tokens > 0

    comp = c.completions.create(model="gemma", prompt=PROMPT, max_tokens=8, temperature=0)
    assert comp.choices[0].text and comp.usage.prompt_tokens > 0

    chunks = list(c.chat.completions.create(model="gemma", messages=[{"role": "user", "content": "Count"}],
                                            max_tokens=8, temperature=0, stream=True,
                                            stream_options={"include_usage": True}))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0

    streamed = "".join(ch.choices[0].text for ch in c.completions.create(
        model="gemma", prompt=PROMPT, max_tokens=8, temperature=0, stream=True) if ch.choices)
    assert streamed == comp.choices[0].text  # greedy: streaming changes nothing


def test_unknown_model_and_bad_request(launch):
    run = launch(GEMMA)
    c = client(run)
    with pytest.raises(openai.NotFoundError) as err:
        c.completions.create(model="gpt-4o", prompt="x", max_tokens=1)
    assert err.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model="gemma", messages=[{"role": "nobody", "content": 5}], max_tokens=1)
    r = httpx.post(run.url + "/v1/chat/completions", content=b"{oops", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


def test_api_key_required_when_configured(launch):
    run = launch(GEMMA + "gateway: {api_key_env: LAUNCHER_TEST_KEY}\n", env={"LAUNCHER_TEST_KEY": "k-123"})
    run.headers = {"Authorization": "Bearer k-123"}
    with pytest.raises(openai.AuthenticationError):
        client(run, "wrong").completions.create(model="gemma", prompt="x", max_tokens=1)
    ok = client(run, "k-123").completions.create(model="gemma", prompt="x", max_tokens=1)
    assert ok.choices
    assert httpx.get(run.url + "/health").status_code == 200
    # The key never reaches an engine's command line.
    pid = run.engine_pids()[0]
    assert "k-123" not in open(f"/proc/{pid}/cmdline").read()


def slots_busy(engine_url: str) -> int:
    return sum(1 for s in httpx.get(engine_url + "/slots").json() if s.get("is_processing"))


def test_disconnect_mid_stream_frees_engine_slot(launch):
    run = launch(GEMMA)
    engine = run.models()["engines"][0]["url"]
    body = {"model": "gemma", "prompt": PROMPT, "max_tokens": 2000, "stream": True, "ignore_eos": True}
    with httpx.stream("POST", run.url + "/v1/completions", json=body, timeout=60) as r:
        seen = 0
        for line in r.iter_lines():
            seen += line.startswith("data: ")
            if seen == 3:
                assert slots_busy(engine) == 1
                break
    left = time.monotonic()
    assert wait_for(lambda: slots_busy(engine) == 0, 5, 0.02)
    print(f"slot free {time.monotonic() - left:.2f}s after the client hung up")


def test_engine_sigkill_gives_callers_a_clean_error_and_engine_returns(launch):
    run = launch(GEMMA)
    pid = run.engine_pids()[0]
    c = client(run)
    outcome = {}

    def long_stream():
        try:
            events = c.completions.create(model="gemma", prompt=PROMPT, max_tokens=3000, stream=True,
                                          extra_body={"ignore_eos": True})
            for _ in events:
                pass
            outcome["result"] = "ended normally"
        except openai.APIError as exc:
            outcome["result"] = f"error: {exc}"
        outcome["at"] = time.monotonic()

    t = threading.Thread(target=long_stream)
    t.start()
    time.sleep(1.0)
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    t.join(30)
    assert not t.is_alive(), "the caller hung after the engine died"
    assert outcome["result"].startswith("error"), outcome
    print(f"caller saw the error {outcome['at'] - killed_at:.2f}s after SIGKILL")
    run.wait_ready(60)
    assert run.engine_pids()[0] != pid and run.models()["restarts"] == 1
    assert c.completions.create(model="gemma", prompt="x", max_tokens=2).choices


def test_launcher_sigkill_leaves_no_child(launch):
    run = launch(GEMMA)
    pid = run.engine_pids()[0]
    os.kill(run.proc.pid, signal.SIGKILL)
    run.proc.wait()
    assert wait_for(lambda: not alive(pid), 5, 0.1), f"engine {pid} outlived the SIGKILLed launcher"


def test_ctrl_c_stops_everything_and_exits_zero(launch):
    run = launch(GEMMA)
    pid = run.engine_pids()[0]
    run.proc.send_signal(signal.SIGINT)
    assert run.proc.wait(30) == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_public_port_in_use_is_a_clear_error_before_start(launch, tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        run = launch(GEMMA.replace("port: PORT", f"port: {port}"), wait=False)
        assert run.proc.wait(60) == 1
        assert f"port {port} on 127.0.0.1 is already in use" in run.log.read_text()


def test_ctrl_c_lets_a_running_stream_finish(launch):
    run = launch(GEMMA)
    c = client(run)
    events = c.completions.create(model="gemma", prompt=PROMPT, max_tokens=48, stream=True,
                                  extra_body={"ignore_eos": True})
    first = next(iter(events))
    run.proc.send_signal(signal.SIGINT)  # once: drain
    rest = list(events)
    assert first.choices and len(rest) >= 40 and rest[-1].choices[0].finish_reason == "length"
    assert run.proc.wait(60) == 0


def test_second_ctrl_c_stops_at_once(launch):
    run = launch(GEMMA)
    pid = run.engine_pids()[0]
    body = {"model": "gemma", "prompt": PROMPT, "max_tokens": 4000, "stream": True, "ignore_eos": True}
    with httpx.stream("POST", run.url + "/v1/completions", json=body, timeout=120) as r:
        lines = r.iter_lines()
        next(lines)
        run.proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        run.proc.send_signal(signal.SIGINT)  # twice: stop now, do not wait for the 4000 tokens
        run.proc.wait(20)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_quick_serve_of_a_gguf_file_without_yaml(start_launch, gemma):
    port = next(free_ports())
    start_launch(["serve", str(gemma), "--name", "quick", "--n-ctx", "1024", "--n-parallel", "1",
                  "--port", str(port)], port)
    c = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
    assert c.completions.create(model="quick", prompt="Hi", max_tokens=2).choices
    assert c.completions.create(model=gemma.stem, prompt="Hi", max_tokens=2).choices  # the file stem works too
