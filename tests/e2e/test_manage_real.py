"""Tier 2: two real models, on-demand loading with LRU, /api/v1 against live processes, real llama-bench."""
import os
from pathlib import Path

import httpx
import openai
import pytest

from launcher.supervise.proctree import alive
from launcher.testing.launched import wait_for

TWO = """models_dir: models
gateway: {max_loaded: 1, load_timeout: 180}
n_ctx: 1024
n_parallel: 1
port: PORT
models:
  - model: models/gemma-a.gguf
    model_alias: gemma-a
  - model: models/gemma-b.gguf
    model_alias: gemma-b
    preload: false
"""


@pytest.fixture
def models_dir(tmp_path, gemma):
    d = tmp_path / "models"
    d.mkdir()
    os.link(gemma, d / "gemma-a.gguf")  # a second GGUF: same weights, another file and name
    os.link(gemma, d / "gemma-b.gguf")
    (tmp_path / "outside.gguf").write_bytes(b"GGUF" + b"\0" * 64)
    os.symlink(tmp_path / "outside.gguf", d / "link-out.gguf")
    return d


def api(run, method, path, **kw):
    return httpx.request(method, run.url + "/api/v1" + path, timeout=300, **kw)


def test_two_models_route_load_on_demand_and_evict_lru(launch, models_dir):
    run = launch(TWO)
    c = openai.OpenAI(base_url=run.url + "/v1", api_key="x", max_retries=0, timeout=300)
    states = lambda: {m["model_name"]: m["state"] for m in api(run, "GET", "/model/status").json()["data"]}
    assert states() == {"gemma-a": "ready", "gemma-b": "stopped"}
    a = c.completions.create(model="gemma-a", prompt="Hello", max_tokens=4, temperature=0)
    assert a.model == "gemma-a"
    b = c.completions.create(model="gemma-b", prompt="Hello", max_tokens=4, temperature=0)  # loads on demand
    assert b.model == "gemma-b" and b.choices[0].text == a.choices[0].text
    assert states() == {"gemma-a": "stopped", "gemma-b": "ready"}  # max_loaded 1: a was evicted
    with pytest.raises(openai.NotFoundError):
        c.completions.create(model="gemma-c", prompt="x", max_tokens=1)


def test_switch_status_and_stop_through_the_api(launch, models_dir):
    run = launch(TWO)
    r = api(run, "POST", "/model/switch", json={"model_path": "gemma-b.gguf",
                                               "config": {"model_alias": "switched", "n_ctx": 512}})
    assert r.status_code == 200 and r.json()["message"] == "Model switch initiated", r.text
    status = lambda: api(run, "GET", "/model/status", params={"model_name": "switched"}).json()["data"]  # noqa: E731
    assert wait_for(lambda: status()["state"] == "ready", 120, 0.25)
    st = status()
    assert st["running"] and st["model_name"] == "switched"
    assert st["model_path"] == str(models_dir / "gemma-b.gguf")
    pid = st["process_id"]
    with open(f"/proc/{pid}/cmdline", "rb") as fh:
        assert b"\0--ctx-size\x00512\0" in fh.read()
    assert st["host_rss_mib"] > 50 and st["port"] and st["start_time"].endswith("Z")
    models = {m["model_name"]: m for m in api(run, "GET", "/model/status").json()["data"]}
    assert models["gemma-a"]["state"] == "stopped"  # max_loaded 1: switching evicted it
    out = openai.OpenAI(base_url=run.url + "/v1", api_key="x", max_retries=0).completions.create(
        model="switched", prompt="Hi", max_tokens=2)
    assert out.choices
    stop = api(run, "POST", "/model/stop", json={"model_name": "switched"}).json()
    assert stop == {"success": True, "message": "Model stopped", "data": None, "error": ""}
    assert wait_for(lambda: not alive(pid), 5)


@pytest.mark.parametrize("bad", ["../outside.gguf", "/etc/passwd", str(Path("/tmp") / "outside.gguf"),
                                 "models/../../outside.gguf"])
def test_traversal_attempts_are_refused(launch, models_dir, bad):
    run = launch(TWO)
    r = api(run, "POST", "/model/switch", json={"model_path": bad, "config": {}})
    assert r.status_code == 400 and r.json()["success"] is False


def test_models_listing_and_a_real_llama_bench_task(launch, models_dir):
    run = launch(TWO)
    files = {f["name"]: f for f in api(run, "GET", "/models").json()["data"]}
    assert set(files) == {"gemma-a.gguf", "gemma-b.gguf", "link-out.gguf"}  # a symlink inside is followed
    assert "error" in files["link-out.gguf"]  # ... and a damaged file is listed with the reason
    assert all(files[n]["architecture"] == "gemma3" and files[n]["quantization"] == "Q4_K_M"
               for n in ("gemma-a.gguf", "gemma-b.gguf"))
    r = api(run, "POST", "/benchmark", json={"model_path": "gemma-a.gguf", "n_prompt": 32, "n_gen": 8,
                                            "repetitions": 1, "threads": 2})
    assert r.status_code == 200
    task = r.json()["data"]["task_id"]
    assert api(run, "POST", "/benchmark", json={"model_path": "gemma-a.gguf"}).status_code == 409
    status = lambda: api(run, "GET", "/benchmark/status", params={"task_id": task}).json()["data"]  # noqa: E731
    wait_for(lambda: status()["state"] in ("done", "failed"), 300, 1)
    data = status()
    assert data["state"] == "done", data
    tests = {row["test"]: row["tokens_per_s"] for row in data["results"]}
    assert set(tests) == {"pp32", "tg8"} and all(v > 0 for v in tests.values())
