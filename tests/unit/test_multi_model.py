"""Tier 1: several models in one config, on-demand loading, LRU eviction, TTL, management API."""
import os
import time
from pathlib import Path

import httpx
import pytest

from launcher.errors import ConfigError
from launcher.testing.launched import wait_for
from launcher.validate import load_source
from tests.fakes.harness import gateway
from tests.fakes.management import make_manager, models_folder

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
        assert lines[-1] == "data: [DONE]" and len(lines) == 31  # intact: the 29 tokens left, the finish chunk, [DONE]
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

@pytest.fixture
def models_dir(tmp_path):
    return models_folder(tmp_path)


def api(gw, method, path, **kw):
    return httpx.request(method, gw.url + "/api/v1" + path, timeout=30, **kw)


def status_of(gw, name: str) -> dict:
    return api(gw, "GET", "/model/status", params={"model_name": name}).json()["data"]


def test_list_models_in_the_documents_shape_with_header_facts(tmp_path, models_dir):
    with gateway(tmp_path, manager=make_manager(tmp_path, models_dir)) as gw:
        body = api(gw, "GET", "/models").json()
        assert body == {"success": True, "message": "Found 2 GGUF models", "data": body["data"], "error": ""}
        by_name = {e["name"]: e for e in body["data"]}
        assert set(by_name) == {"tiny.gguf", "linked.gguf"}  # the symlinked store file is listed too
        tiny = by_name["tiny.gguf"]
        assert tiny["path"] == str(models_dir / "tiny.gguf") and tiny["size"] == (models_dir / "tiny.gguf").stat().st_size
        assert tiny["architecture"] == "llama" and tiny["context_length"] == 256 and tiny["quantization"] == "F32"
        assert tiny["weights_bytes"] == 8 * 8 * 4 and tiny["kv_bytes_per_token"] == 2 * (4 + 4) * 2


@pytest.mark.parametrize("bad, status", [("../secret.gguf", 400), ("/etc/passwd", 400), ("notes.txt", 400),
                                         ("sub/../../secret.gguf", 400), (str(Path("/tmp") / "secret.gguf"), 400),
                                         ("missing.gguf", 404), ("sub/missing.gguf", 404)])
def test_switch_refuses_paths_outside_models_dir(tmp_path, models_dir, bad, status):
    with gateway(tmp_path, manager=make_manager(tmp_path, models_dir)) as gw:
        r = api(gw, "POST", "/model/switch", json={"model_path": bad, "config": {}})
        assert r.status_code == status
        body = r.json()
        assert body["success"] is False and body["data"] is None and isinstance(body["error"], str) and body["error"]


def test_switch_follows_a_symlink_placed_inside_models_dir(tmp_path, models_dir):
    with gateway(tmp_path, manager=make_manager(tmp_path, models_dir)) as gw:
        r = api(gw, "POST", "/model/switch", json={"model_path": "linked.gguf", "config": {}})
        assert r.json() == {"success": True, "message": "Model switch initiated", "data": None, "error": ""}
        assert wait_for(lambda: status_of(gw, "linked")["state"] == "ready", 20)
        assert status_of(gw, "linked")["model_path"] == str(models_dir / "linked.gguf")


def test_switch_validates_settings_and_names_the_nearest_key(tmp_path, models_dir):
    with gateway(tmp_path, manager=make_manager(tmp_path, models_dir)) as gw:
        r = api(gw, "POST", "/model/switch", json={"model_path": "tiny.gguf", "config": {"ctx_sise": 5}})
        assert r.status_code == 400 and "ctx_sise" in r.json()["error"] and "ctx_size" in r.json()["error"]
        r = api(gw, "POST", "/model/switch", json={"model_path": "tiny.gguf", "config": {"ctx_size": "big"}})
        assert r.status_code == 400 and "n_ctx" in r.json()["error"]


def test_switch_stop_and_status(tmp_path, models_dir):
    with gateway(tmp_path, manager=make_manager(tmp_path, models_dir)) as gw:
        r = api(gw, "POST", "/model/switch", json={"model_path": "tiny.gguf", "config": {"ctx_size": 64,
                                                                                        "host": "0.0.0.0"}})
        assert r.status_code == 200 and r.json()["data"] is None and r.json()["error"] == ""
        assert r.json()["message"].startswith("Model switch initiated (host 0.0.0.0: engines listen on internal")
        assert wait_for(lambda: status_of(gw, "tiny")["state"] == "ready", 20)
        st = status_of(gw, "tiny")
        assert st["running"] and st["process_id"] and st["host_rss_mib"] > 0 and st["vram_usage"] is None
        assert st["model_path"] == str(models_dir / "tiny.gguf") and st["port"]
        assert st["start_time"].endswith("Z") and st["start_time"][:4].isdigit()
        assert gw.runners[0].state == "stopped"  # the switch replaced the running model
        assert httpx.post(gw.url + "/v1/chat/completions", json=CHAT | {"model": "TINY"}).status_code == 200
        stopped = api(gw, "POST", "/model/stop", json={"model_name": "tiny"}).json()
        assert stopped == {"success": True, "message": "Model stopped", "data": None, "error": ""}
        with pytest.raises(ProcessLookupError):
            os.kill(st["process_id"], 0)
        again = httpx.post(gw.url + "/v1/chat/completions", json=CHAT | {"model": "tiny"})
        assert again.status_code == 503 and again.json()["error"]["code"] == "model_stopped"
        # and a model replaced by the switch stays stopped too, until switched to again
        assert httpx.post(gw.url + "/v1/chat/completions", json=CHAT | {"model": "fake"}).status_code == 503


def test_status_during_a_switch_says_running_only_with_a_process(tmp_path, models_dir):
    """A client that parses the document's fields never sees `running: true` without start_time and
    process_id, one entry per model, and one model running once the switch is over."""
    manager = make_manager(tmp_path, models_dir, flags=("--load-seconds", "1.5"))
    with gateway(tmp_path, ["--ignore-sigterm"], manager=manager) as gw:  # the evicted model takes its time
        api(gw, "POST", "/model/switch", json={"model_path": "tiny.gguf", "config": {}})
        snapshots = []
        while not snapshots or not any(e["model_name"] == "tiny" and e["state"] == "ready" for e in snapshots[-1]):
            snapshots.append(api(gw, "GET", "/model/status").json()["data"])
            assert len(snapshots) < 400
            time.sleep(0.05)
        for entries in snapshots:
            names = [e["model_name"] for e in entries]
            assert len(names) == len(set(names)), entries
            for e in entries:
                assert (e["start_time"] is not None) == (e["process_id"] is not None) == e["running"], e
        starting = [e for entries in snapshots for e in entries if e["model_name"] == "tiny" and e["state"] == "starting"]
        assert starting  # the switch was watched while the model loaded
        assert [e["model_name"] for e in snapshots[-1] if e["running"]] == ["tiny"]


def test_stop_without_a_body_stops_the_running_model(tmp_path, models_dir):
    with gateway(tmp_path, manager=make_manager(tmp_path, models_dir)) as gw:
        r = api(gw, "POST", "/model/stop")
        assert r.json() == {"success": True, "message": "Model stopped", "data": None, "error": ""}
        assert gw.runners[0].state == "stopped" and gw.runners[0].held
        assert api(gw, "POST", "/model/stop").status_code == 409  # nothing runs now


def test_benchmark_task_runs_and_a_second_one_on_the_device_is_409(tmp_path, models_dir):
    with gateway(tmp_path, manager=make_manager(tmp_path, models_dir, delay=1.0)) as gw:
        r = api(gw, "POST", "/benchmark", json={"model_path": "tiny.gguf", "config": {
            "n_prompt": 16, "n_gen": 0, "repetitions": 2, "flash_attn": 0}})
        assert r.status_code == 200 and r.json()["message"] == "Benchmark started"
        task = r.json()["data"]["task_id"]
        busy = api(gw, "POST", "/benchmark", json={"model_path": "tiny.gguf"})
        assert busy.status_code == 409 and busy.json()["code"] == "conflict"
        status = lambda: api(gw, "GET", "/benchmark/status", params={"task_id": task}).json()["data"]  # noqa: E731
        assert wait_for(lambda: status()["state"] in ("done", "failed"), 20, 0.2)
        data = status()
        assert data["state"] == "done", data
        assert data["results"][0]["tokens_per_s"] == 100.0
        assert {"-p", "16", "-fa", "off", "-r", "2"} <= set(data["raw"][0]["argv"])
        assert api(gw, "POST", "/benchmark", json={"model_path": "tiny.gguf", "bogus": 1}).status_code == 400


def test_a_running_benchmark_can_be_cancelled(tmp_path, models_dir):
    with gateway(tmp_path, manager=make_manager(tmp_path, models_dir, delay=30)) as gw:
        task = api(gw, "POST", "/benchmark", json={"model_path": "tiny.gguf"}).json()["data"]["task_id"]
        cancelled = api(gw, "POST", "/benchmark/cancel", json={"task_id": task}).json()
        assert cancelled["success"] and cancelled["data"]["state"] == "cancelled"
        assert api(gw, "POST", "/benchmark", json={"model_path": "tiny.gguf"}).status_code == 200  # device free


def test_management_api_needs_the_admin_key_when_keys_are_set(tmp_path, models_dir):
    text = "model: fake.gguf\nmodel_alias: fake\nengine: {start_timeout: 20}\ngateway: {admin_key_env: ADMIN_T}\n"
    os.environ["ADMIN_T"] = "adm"
    try:
        with gateway(tmp_path, keys=("user",), text=text, manager=make_manager(tmp_path, models_dir)) as gw:
            assert api(gw, "GET", "/models", headers={"Authorization": "Bearer user"}).status_code == 401
            assert api(gw, "GET", "/models", headers={"Authorization": "Bearer adm"}).status_code == 200
    finally:
        del os.environ["ADMIN_T"]
