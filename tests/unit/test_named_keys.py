"""Tier 1: named keys (gateway.keys): scopes, limits with a clock the test moves, each API family's 429, and
secrets that never leave the keyring."""
from __future__ import annotations

import asyncio

import grpc
import httpx
import pytest

from launcher.errors import ConfigError, LauncherError
from launcher.gateway.keys import Identity, load_keyring
from launcher.gateway.quota import Quota, RateLimited, duration, usage_in
from launcher.protocols.kserve.service import Stub
from launcher.validate import load_source
from tests.fakes.harness import gateway
from tests.unit.test_kserve_grpc_fake import infer_request


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_requests_per_minute_counts_a_sliding_minute():
    clock, who = Clock(), Identity("alice", requests_per_minute=2)
    quota = Quota(clock)
    quota.admit(who), quota.finish(who, 0)
    clock.now += 10
    quota.admit(who), quota.finish(who, 0)
    with pytest.raises(RateLimited) as refused:
        quota.admit(who)
    headers = refused.value.headers
    assert refused.value.status == 429 and headers["Retry-After"] == "50"
    assert (headers["x-ratelimit-limit-requests"], headers["x-ratelimit-remaining-requests"],
            headers["x-ratelimit-reset-requests"]) == ("2", "0", "50s")
    clock.now += 50.5          # the first one left the window
    quota.admit(who)


def test_tokens_per_minute_counts_what_the_engine_reported():
    clock, who = Clock(), Identity("bob", tokens_per_minute=100)
    quota = Quota(clock)
    quota.admit(who)
    quota.finish(who, 60)
    clock.now += 30
    quota.admit(who)
    quota.finish(who, 50)      # 110 used: the next one waits until the first 60 leave the window
    with pytest.raises(RateLimited, match="used 110 tokens") as refused:
        quota.admit(who)
    assert refused.value.headers["Retry-After"] == "30" and refused.value.headers["x-ratelimit-remaining-tokens"] == "0"
    clock.now += 30.1
    quota.admit(who)


def test_max_concurrent_frees_when_a_request_ends():
    quota, who = Quota(Clock()), Identity("carol", max_concurrent=1)
    quota.admit(who)
    with pytest.raises(RateLimited, match="max_concurrent 1"):
        quota.admit(who)
    quota.finish(who, 0)
    quota.admit(who)


def test_keys_without_limits_are_never_counted():
    quota = Quota(Clock())
    for _ in range(1000):
        quota.admit(Identity())
    assert quota._use == {}


def test_scopes_are_globs_over_a_models_names():
    who = Identity("x", models=("gemma*", "qwen2-7b"))
    assert who.may_use(("gemma3-270m",)) and who.may_use(("Qwen2-7B",)) and not who.may_use(("deepseek",))
    assert who.may_use(("ds", "gemma-alias"))   # an alias counts


def test_durations_read_as_openais():
    assert [duration(s) for s in (0.02, 1.2, 59.9, 90)] == ["20ms", "2s", "1m0s", "1m30s"]


def test_usage_is_read_from_every_familys_last_event():
    assert usage_in(b'data: {"choices":[],"usage":{"completion_tokens":7,"prompt_tokens":3}}') == (3, 7)
    assert usage_in(b'{"type":"message_delta","usage":{"input_tokens":4,"output_tokens":9}}') == (4, 9)
    assert usage_in(b'data: {"choices":[{"delta":{"content":"hi"}}]}') is None


# --- config ------------------------------------------------------------------------------------

def test_a_key_needs_its_secret_in_exactly_one_place_and_a_name_of_its_own():
    text = ("model: m.gguf\ngateway:\n  keys:\n    - {name: a}\n    - {name: b, key_env: B, key_file: b.txt}\n"
            "    - {name: a, key_env: A}\n")
    with pytest.raises(ConfigError) as err:
        load_source(text, "k.yaml", offline=True)
    found = {(p.dotted, p.line) for p in err.value.problems}
    assert found == {("gateway.keys[0]", 4), ("gateway.keys[1]", 5), ("gateway.keys[2].name", 6)}, found


def test_a_missing_secret_is_an_error_naming_the_key_not_its_value(tmp_path, monkeypatch):
    monkeypatch.delenv("NOPE_KEY", raising=False)
    cfg = load_source("model: m.gguf\ngateway:\n  keys: [{name: team-a, key_env: NOPE_KEY}]\n", "k.yaml",
                      offline=True).config
    with pytest.raises(LauncherError, match="team-a.*NOPE_KEY is empty or not set"):
        load_keyring(cfg.gateway)
    (tmp_path / "k.txt").write_text("\n  s3cret-file  \n")
    monkeypatch.setenv("A_KEY", "s3cret-env")
    cfg = load_source("model: m.gguf\ngateway:\n  keys: [{name: a, key_env: A_KEY}, {name: b, key_file: k.txt}]\n",
                      str(tmp_path / "k.yaml"), offline=True).config
    ring = load_keyring(cfg.gateway)
    assert ring.identify("s3cret-env").name == "a" and ring.identify("s3cret-file").name == "b"
    assert ring.identify("nope") is None and ring.names == ("a", "b")


# --- through the gateway -----------------------------------------------------------------------

KEYS = """model: fake.gguf
model_alias: fake
engine: {max_restarts: 3, restart_backoff: 0.1, start_timeout: 20}
gateway:
  keys:
    - {name: alice, key_env: ALICE_KEY, models: [fak*], requests_per_minute: 3}
    - {name: bob, key_env: BOB_KEY, models: [other-*]}
"""
ALICE, BOB = "alice-s3cret", "bob-s3cret"


@pytest.fixture
def keyed(tmp_path, monkeypatch):
    monkeypatch.setenv("ALICE_KEY", ALICE)
    monkeypatch.setenv("BOB_KEY", BOB)
    with gateway(tmp_path, ["--tokens", "3"], text=KEYS) as gw:
        yield gw


def chat(gw, key: str, stream: bool = False) -> httpx.Response:
    return httpx.post(gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, timeout=30,
                      json={"model": "fake", "messages": [{"role": "user", "content": "hi"}], "stream": stream})


def test_a_key_uses_only_its_models_and_sees_only_them(keyed):
    assert chat(keyed, ALICE).status_code == 200
    refused = chat(keyed, BOB)
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_error"
    assert "bob" in refused.json()["error"]["message"] and BOB not in refused.text
    listed = lambda key: [m["id"] for m in httpx.get(keyed.url + "/v1/models",  # noqa: E731
                                                     headers={"Authorization": f"Bearer {key}"}).json()["data"]]
    assert listed(ALICE) == ["fake"] and listed(BOB) == []


def test_over_the_limit_every_family_answers_429_in_its_own_envelope(keyed):
    auth = {"Authorization": f"Bearer {ALICE}"}
    assert chat(keyed, ALICE).status_code == 200 and chat(keyed, ALICE, stream=True).status_code == 200
    assert httpx.post(keyed.url + "/v2/models/fake/infer", headers=auth, json={"inputs": [
        {"name": "prompt", "datatype": "BYTES", "shape": [1], "data": ["hi"]}]}).status_code == 200
    openai = chat(keyed, ALICE)
    assert openai.status_code == 429 and openai.json()["error"]["code"] == "rate_limit_exceeded"
    assert openai.headers["x-ratelimit-limit-requests"] == "3" and openai.headers["x-ratelimit-remaining-requests"] == "0"
    assert int(openai.headers["retry-after"]) >= 1 and openai.headers["x-ratelimit-reset-requests"].endswith("s")
    anthropic = httpx.post(keyed.url + "/v1/messages", headers={"x-api-key": ALICE}, json={
        "model": "fake", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
    assert anthropic.status_code == 429 and anthropic.json()["type"] == "error" and "retry-after" in anthropic.headers
    kserve = httpx.post(keyed.url + "/v2/models/fake/infer", headers=auth, json={"inputs": [
        {"name": "prompt", "datatype": "BYTES", "shape": [1], "data": ["hi"]}]})
    assert kserve.status_code == 429 and isinstance(kserve.json()["error"], str)
    with grpc.insecure_channel(keyed.url.removeprefix("http://")) as channel:
        with pytest.raises(grpc.RpcError) as err:
            Stub(channel).ModelInfer(infer_request(), metadata=[("authorization", f"Bearer {ALICE}")])
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and ALICE not in err.value.details()
    metrics = httpx.get(keyed.url + "/metrics", headers=auth).text
    assert 'launcher_key_requests_total{key="alice",model="fake",status="429"}' in metrics
    assert 'launcher_key_tokens_total{key="alice",kind="completion",model="fake"}' in metrics
    assert ALICE not in metrics and BOB not in metrics


def test_token_limits_count_streams_by_the_engines_report(tmp_path, monkeypatch):
    monkeypatch.setenv("ALICE_KEY", ALICE)
    monkeypatch.setenv("BOB_KEY", BOB)
    text = KEYS.replace("requests_per_minute: 3", "tokens_per_minute: 10")
    with gateway(tmp_path, ["--tokens", "3"], text=text) as gw:
        for stream in (True, False):   # each: the prompt's and the 3 completion tokens, as the engine says
            assert chat(gw, ALICE, stream=stream).status_code == 200
        refused = chat(gw, ALICE, stream=True)
        assert refused.status_code == 429 and refused.headers["x-ratelimit-limit-tokens"] == "10"
        assert refused.headers["x-ratelimit-remaining-tokens"] == "0"
        metrics = httpx.get(gw.url + "/metrics", headers={"Authorization": f"Bearer {ALICE}"}).text
        prompt = [ln for ln in metrics.splitlines() if ln.startswith('launcher_key_tokens_total{key="alice",kind="prompt"')]
        completion = [ln for ln in metrics.splitlines()
                      if ln.startswith('launcher_key_tokens_total{key="alice",kind="completion"')]
        assert float(completion[0].split()[-1]) == 6.0 and float(prompt[0].split()[-1]) > 0


def test_a_reload_changes_keys_scopes_and_limits_in_place(tmp_path, monkeypatch):
    """What a SIGHUP or --watch-config does with a changed key list: applied to the running gateway, the
    engine untouched. The reload reads the file offline (the fake engine's model is no GGUF file)."""
    from functools import partial

    from launcher import reload as reload_module
    from launcher.gateway.app import reconfigure
    from launcher.validate import load_config
    for name, value in (("ALICE_KEY", ALICE), ("BOB_KEY", BOB), ("CAROL_KEY", "carol-s3cret")):
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(reload_module, "load_config", partial(load_config, offline=True))
    path = tmp_path / "c.yaml"
    path.write_text(KEYS)
    with gateway(tmp_path, ["--tokens", "3"], text=KEYS) as gw:
        pid = gw.runners[0].upstreams[0].process.pid
        assert chat(gw, BOB).status_code == 403 and chat(gw, "carol-s3cret").status_code == 401
        path.write_text(KEYS.replace("[other-*]", "[fak*]").replace("requests_per_minute: 3", "requests_per_minute: 1")
                        + "    - {name: carol, key_env: CAROL_KEY, max_concurrent: 1}\n")
        reloader = reload_module.Reloader(str(path), load_source(KEYS, str(path), offline=True).config, gw.deployment,
                                          gw.app.state.gw.pool, lambda new: {}, lambda g: reconfigure(gw.app, g))
        changes = asyncio.run_coroutine_threadsafe(reloader.reload(), gw.loop).result(30)
        assert changes.gateway and not (changes.changed or changes.added or changes.removed)
        assert chat(gw, BOB).status_code == 200 and chat(gw, "carol-s3cret").status_code == 200
        assert chat(gw, ALICE).status_code == 200
        over = chat(gw, ALICE)
        assert over.status_code == 429 and over.headers["x-ratelimit-limit-requests"] == "1"
        assert gw.runners[0].upstreams[0].process.pid == pid    # the engine was never restarted
        path.write_text(KEYS.replace("    - {name: bob, key_env: BOB_KEY, models: [other-*]}\n", ""))
        asyncio.run_coroutine_threadsafe(reloader.reload(), gw.loop).result(30)
        assert chat(gw, BOB).status_code == 401 and chat(gw, "carol-s3cret").status_code == 401


def test_the_admin_key_is_a_key_named_admin_once_there_are_keys(monkeypatch):
    monkeypatch.setenv("ALICE_KEY", ALICE)
    monkeypatch.setenv("THE_ADMIN", "adm-1")
    cfg = load_source("model: m.gguf\ngateway:\n  admin_key_env: THE_ADMIN\n  keys: [{name: a, key_env: ALICE_KEY}]\n",
                      "k.yaml", offline=True).config
    ring = load_keyring(cfg.gateway)
    assert ring.identify("adm-1").name == "admin" and not ring.identify("adm-1").limited
    alone = load_source("model: m.gguf\ngateway: {admin_key_env: THE_ADMIN}\n", "k.yaml", offline=True).config
    assert load_keyring(alone.gateway).secrets == ()    # only an admin key: serving stays open, as before


def test_a_streams_usage_is_read_whole_wherever_the_socket_splits_it():
    """The engine's last events arrive in reads of any size: the tokens it reported are those counted."""
    from launcher.gateway.proxy import OPENAI_STREAM, Tally
    stream = (b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'
              b'data: {"choices":[],"usage":{"completion_tokens":16,"prompt_tokens":123}}\n\n'
              b'data: [DONE]\n\n')
    for cut in range(1, len(stream)):
        for second in (cut, min(cut + 7, len(stream))):
            tally = Tally(OPENAI_STREAM)
            sent = b"".join(tally.add(part) for part in (stream[:cut], stream[cut:second], stream[second:]) if part)
            assert sent == stream and tally.usage == (123, 16), (cut, second)
