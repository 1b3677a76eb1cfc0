"""Tier 1: several models in one config, on-demand loading, LRU eviction, TTL, management API."""
import os
import sys
from pathlib import Path

import httpx
import pytest

from launcher.config import load_source
from launcher.errors import ConfigError
from launcher.bench.launched import wait_for
from launcher.gateway.manager import ModelManager
from tests.fakes.harness import fake_plan, gateway

TWO = """engine: {max_restarts: 1, restart_backoff: 0.1, start_timeout: 20}
n_ctx: 512
gateway: {max_loaded: MAXL, load_timeout: 20}
models:
  - model: a.gguf
    model_alias: alpha
  - model: b.gguf
    model_alias: beta
    preload: false
    n_ctx: 1024
"""
CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def two(max_loaded=1):
    return TWO.replace("MAXL", str(max_loaded))


def test_models_inherit_top_level_keys_and_override_them():
    cfg = load_source(two(), "x.yaml", offline=True).config
    a, b = cfg.models
    assert (a.name, a.params.n_ctx, a.preload) == ("alpha", 512, True)
    assert (b.name, b.params.n_ctx, b.preload) == ("beta", 1024, False)
    assert a.engine.max_restarts == 1 and cfg.gateway.max_loaded == 1


def test_problem_in_one_model_points_at_its_item():
    text = "models:\n  - model: a.gguf\n  - model: b.gguf\n    split_mode: rows\n    n_ctxx: 3\n"
    with pytest.raises(ConfigError) as err:
        load_source(text, "x.yaml", offline=True)
    found = {(p.dotted, p.line) for p in err.value.problems}
    assert ("models[1].split_mode", 4) in found and ("models[1].n_ctxx", 5) in found


def test_duplicate_names_and_model_with_models_are_errors():
    with pytest.raises(ConfigError, match="also used by models"):
        load_source("models:\n  - {model: a.gguf, model_alias: x}\n  - {model: b.gguf, model_alias: x}\n",
                    "x.yaml", offline=True)
    with pytest.raises(ConfigError, match="either `model`"):
        load_source("model: a.gguf\nmodels:\n  - {model: b.gguf}\n", "x.yaml", offline=True)


def test_routes_by_model_and_loads_on_demand_with_lru_eviction(tmp_path):
    with gateway(tmp_path, text=two(max_loaded=1)) as gw:
        alpha, beta = gw.runners
        assert (alpha.state, beta.state) == ("ready", "stopped")
        r = httpx.post(gw.url + "/v1/chat/completions", json=CHAT | {"model": "beta"}, timeout=30)
        assert r.status_code == 200
        assert (alpha.state, beta.state) == ("stopped", "ready")  # alpha was idle: evicted
        r = httpx.post(gw.url + "/v1/chat/completions", json=CHAT | {"model": "alpha"}, timeout=30)
        assert r.status_code == 200 and (alpha.state, beta.state) == ("ready", "stopped")


def test_a_model_with_requests_in_flight_is_never_evicted(tmp_path):
    with gateway(tmp_path, ["--tokens", "30", "--delay", "0.05"], text=two(max_loaded=1)) as gw:
        alpha, beta = gw.runners
        with httpx.stream("POST", gw.url + "/v1/chat/completions", json=CHAT | {"model": "alpha", "stream": True},
                          timeout=30) as stream:
            lines_it = stream.iter_lines()
            next(lines_it)
            other = httpx.post(gw.url + "/v1/chat/completions", json=CHAT | {"model": "beta"}, timeout=30)
            lines = [ln for ln in lines_it if ln]
        assert lines[-1] == "data: [DONE]" and len(lines) == 30  # alpha's stream finished intact
        assert other.status_code == 200 and beta.state == "ready" and alpha.state == "stopped"


def test_streaming_request_keeps_alive_while_its_model_loads(tmp_path):
    with gateway(tmp_path, ["--load-seconds", "2.5"], text=two(max_loaded=2)) as gw:
        r = httpx.post(gw.url + "/v1/chat/completions", json=CHAT | {"model": "beta", "stream": True}, timeout=30)
        assert r.status_code == 200
        assert r.text.startswith(": loading beta")
        assert r.text.rstrip().endswith("data: [DONE]")


def test_idle_model_is_unloaded_after_its_ttl(tmp_path):
    text = "engine: {start_timeout: 20}\nmodels:\n  - {model: a.gguf, model_alias: a, ttl: 1}\n"
    with gateway(tmp_path, text=text) as gw:
        httpx.post(gw.url + "/v1/chat/completions", json=CHAT | {"model": "a"})
        assert wait_for(lambda: gw.runners[0].state == "stopped", 10)
        assert httpx.post(gw.url + "/v1/chat/completions", json=CHAT | {"model": "a"}, timeout=30).status_code == 200


# ---- management API -------------------------------------------------------------------------

FAKE_BENCH = """#!{python}
import json, sys, time
time.sleep(float({delay}))
print(json.dumps([{{"n_prompt": 16, "n_gen": 0, "avg_ts": 100.0, "stddev_ts": 1.0, "n_threads": 2,
                   "samples_ts": [99, 101], "model_type": "fake", "backends": "CPU", "n_gpu_layers": 0,
                   "argv": sys.argv[1:]}}]))
"""


def make_manager(tmp_path: Path, models_dir: Path, delay: float = 0.0):
    """The /api/v1 service over fake engines and a fake llama-bench, as a factory for the harness."""
    bench = tmp_path / "llama-bench"
    bench.write_text(FAKE_BENCH.format(python=sys.executable, delay=delay))
    bench.chmod(0o755)

    def spec_for(path, settings):
        from launcher.config import validate_source
        from launcher.config.source import Source
        doc = {"model": path, "engine": {"start_timeout": 20}, **settings}
        return validate_source(Source("<switch request>", doc)).config.models[0]

    return lambda deployment, pool: ModelManager(deployment, pool, str(models_dir), spec_for,
                                                 lambda spec: fake_plan(spec.name, []), str(bench))


@pytest.fixture
def models_dir(tmp_path):
    d = tmp_path / "models"
    d.mkdir()
    from tests.unit.gguf_fixture import write_tiny_gguf
    write_tiny_gguf(d / "tiny.gguf")
    (d / "notes.txt").write_text("not a model")
    (tmp_path / "secret.gguf").write_bytes(b"GGUF")
    os.symlink(tmp_path / "secret.gguf", d / "escape.gguf")
    return d


def api(gw, method, path, **kw):
    return httpx.request(method, gw.url + "/api/v1" + path, timeout=30, **kw)


def test_list_models_reads_gguf_headers_and_hides_escaping_symlinks(tmp_path, models_dir):
    with gateway(tmp_path, manager=make_manager(tmp_path, models_dir)) as gw:
        body = api(gw, "GET", "/models").json()
        assert body["success"] is True and body["error"] is None
        [entry] = body["data"]
        assert entry["name"] == "tiny" and entry["architecture"] == "llama"
        assert entry["context_length"] == 256 and entry["parameters"] == 64 and entry["quantization"] == "F32"


@pytest.mark.parametrize("bad", ["../secret.gguf", "/etc/passwd", "escape.gguf", "notes.txt", "missing.gguf"])
def test_switch_refuses_paths_outside_models_dir(tmp_path, models_dir, bad):
    with gateway(tmp_path, manager=make_manager(tmp_path, models_dir)) as gw:
        r = api(gw, "POST", "/model/switch", json={"model_path": bad, "config": {}})
        assert r.status_code == 400
        assert r.json()["success"] is False and r.json()["data"] is None


def test_switch_validates_settings_with_the_config_schema(tmp_path, models_dir):
    with gateway(tmp_path, manager=make_manager(tmp_path, models_dir)) as gw:
        r = api(gw, "POST", "/model/switch", json={"model_path": "tiny.gguf", "config": {"n_ctxx": 5}})
        assert r.status_code == 400 and "n_ctxx" in r.json()["message"]


def test_switch_stop_and_status(tmp_path, models_dir):
    with gateway(tmp_path, manager=make_manager(tmp_path, models_dir)) as gw:
        r = api(gw, "POST", "/model/switch", json={"model_path": "tiny.gguf", "config": {"model_alias": "tiny"}})
        assert r.status_code == 200, r.text
        st = r.json()["data"]
        assert st["running"] and st["state"] == "ready" and st["process_id"] and st["memory_mib"] > 0
        assert st["model_path"] == str(models_dir / "tiny.gguf") and st["port"]
        chat = httpx.post(gw.url + "/v1/chat/completions", json=CHAT | {"model": "tiny"})
        assert chat.status_code == 200
        one = api(gw, "GET", "/model/status", params={"model_name": "tiny"}).json()["data"]
        assert one["process_id"] == st["process_id"]
        stopped = api(gw, "POST", "/model/stop", json={"model_name": "tiny"}).json()["data"]
        assert stopped["running"] is False and stopped["state"] == "stopped"
        with pytest.raises(ProcessLookupError):
            os.kill(st["process_id"], 0)


def test_benchmark_task_runs_and_a_second_one_on_the_device_is_409(tmp_path, models_dir):
    with gateway(tmp_path, manager=make_manager(tmp_path, models_dir, delay=1.0)) as gw:
        r = api(gw, "POST", "/benchmark", json={"model_path": "tiny.gguf", "n_prompt": 16, "n_gen": 0,
                                                "repetitions": 2, "flash_attn": "off"})
        assert r.status_code == 202
        task = r.json()["data"]["task_id"]
        busy = api(gw, "POST", "/benchmark", json={"model_path": "tiny.gguf"})
        assert busy.status_code == 409 and busy.json()["error"]["code"] == "conflict"
        status = lambda: api(gw, "GET", "/benchmark/status", params={"task_id": task}).json()["data"]  # noqa: E731
        assert wait_for(lambda: status()["state"] in ("done", "failed"), 20, 0.2)
        data = status()
        assert data["state"] == "done", data
        assert data["results"][0]["tokens_per_s"] == 100.0
        assert data["raw"][0]["argv"][-8:] == ["-p", "16", "-n", "0", "-fa", "off", "-r", "2"][-8:] or \
            {"-p", "16", "-fa", "off", "-r", "2"} <= set(data["raw"][0]["argv"])
        assert api(gw, "POST", "/benchmark", json={"model_path": "tiny.gguf", "bogus": 1}).status_code == 400


def test_management_api_needs_the_admin_key_when_keys_are_set(tmp_path, models_dir):
    text = "model: fake.gguf\nmodel_alias: fake\nengine: {start_timeout: 20}\ngateway: {admin_key_env: ADMIN_T}\n"
    os.environ["ADMIN_T"] = "adm"
    try:
        with gateway(tmp_path, keys=("user",), text=text, manager=make_manager(tmp_path, models_dir)) as gw:
            assert api(gw, "GET", "/models", headers={"Authorization": "Bearer user"}).status_code == 401
            assert api(gw, "GET", "/models", headers={"Authorization": "Bearer adm"}).status_code == 200
    finally:
        del os.environ["ADMIN_T"]
