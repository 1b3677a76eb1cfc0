"""Tier 1: a model's `aliases`, `set_params` and `strip_params`, in config, plan and every API family."""
from __future__ import annotations

import itertools

import httpx
import pytest

from launcher.binaries import Binaries
from launcher.devices import parse_assumed
from launcher.errors import ConfigError
from launcher.gateway.param_rules import apply_rules
from launcher.plan import Host, make_plan
from launcher.plan.render import to_shell
from launcher.validate import load_source
from tests.fakes.harness import gateway

RULES = """model: fake.gguf
model_alias: fake
aliases: [gpt-4o-mini, Default]
set_params: {max_tokens: 2}
strip_params: [temperature, seed]
engine: {max_restarts: 3, restart_backoff: 0.1, start_timeout: 20}
"""


def test_rules_strip_then_set():
    spec = load_source(RULES, "r.yaml", offline=True).config.models[0]
    body = {"max_tokens": 100, "temperature": 0.9, "seed": 1, "top_p": 0.5}
    assert apply_rules(body, spec) and body == {"max_tokens": 2, "top_p": 0.5}
    assert not apply_rules(body, spec)   # already as the rules say


def test_an_alias_that_names_another_model_is_an_error_with_its_place():
    text = "models:\n  - {model: a.gguf, model_alias: a}\n  - model: b.gguf\n    model_alias: b\n    aliases: [x, A]\n"
    with pytest.raises(ConfigError) as err:
        load_source(text, "m.yaml", offline=True)
    assert [(p.dotted, p.line) for p in err.value.problems] == [("models[1].aliases[1]", 5)]
    assert "'A' is already models[0]'s name or alias" in str(err.value)


def test_plan_shows_the_rules_and_the_names():
    cfg = load_source(RULES, "r.yaml", offline=True).config
    text = to_shell(make_plan(cfg, parse_assumed("cpu"), Binaries(), itertools.count(1), Host()))
    assert "accepted names: fake, gpt-4o-mini, Default, fake.gguf" in text
    assert "requests: set max_tokens=2; strip temperature, seed (set_params / strip_params)" in text


def test_every_family_reaches_the_model_by_an_alias_under_its_rules(tmp_path):
    with gateway(tmp_path, text=RULES) as gw:   # the fake engine answers max_tokens tokens
        listed = {m["id"]: m for m in httpx.get(gw.url + "/v1/models").json()["data"]}
        assert listed["gpt-4o-mini"]["alias_of"] == "fake" and listed["Default"]["alias_of"] == "fake"
        chat = httpx.post(gw.url + "/v1/chat/completions", timeout=30, json={
            "model": "gpt-4o-mini", "max_tokens": 50, "temperature": 2, "messages": [{"role": "user", "content": "hi"}]})
        assert chat.status_code == 200 and chat.json()["usage"]["completion_tokens"] == 2
        anthropic = httpx.post(gw.url + "/v1/messages", timeout=30, json={
            "model": "default", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]})
        assert anthropic.status_code == 200 and anthropic.json()["usage"]["output_tokens"] == 2
        kserve = httpx.post(gw.url + "/v2/models/gpt-4o-mini/infer", timeout=30, json={"inputs": [
            {"name": "prompt", "datatype": "BYTES", "shape": [1], "data": ["hi"]},
            {"name": "max_tokens", "datatype": "INT64", "shape": [1], "data": [50]}]})
        assert kserve.status_code == 200 and kserve.json()["outputs"][0]["data"] == ["t0 t1 "]
