"""Tier 2: the operator commands against a real running gateway and the real build."""
import json

import httpx

from tests.e2e.conftest import GEMMA


def test_validate_without_offline_checks_the_assembled_model(run_launch, gemma):
    res = run_launch("validate", "configs/config_gemma3_270m_cpu.yaml")
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr


def test_launch_status_and_bench_serve_against_a_running_gateway(launch, run_launch, tmp_path):
    run = launch(GEMMA)
    cfg = str(run.log.parent / "config0.yaml")
    st = run_launch("status", "--config", cfg, "--json")
    assert st.returncode == 0, st.stderr
    [model] = json.loads(st.stdout)
    assert model["model_name"] == "gemma" and model["state"] == "ready" and model["process_id"]
    # no models_dir: /api/v1 lists the folder of the configured model, as `make serve` does with Gemma
    listed = httpx.get(run.url + "/api/v1/models").json()
    assert listed["message"].startswith("Found ") and "gemma-3-270m-Q4_K_M.gguf" in [m["name"] for m in listed["data"]]
    out_json, out_png = tmp_path / "b.json", tmp_path / "b.png"
    res = run_launch("bench", "serve", "--config", cfg, "--concurrency", "1,2", "--requests", "2",
                     "--max-tokens", "8", "--json", str(out_json), "--png", str(out_png), timeout=300)
    assert res.returncode == 0, res.stderr
    rows = json.loads(out_json.read_text())["results"]
    assert [r["concurrency"] for r in rows] == [1, 2] and all(r["errors"] == 0 and r["tokens_per_s"] > 0 for r in rows)
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_launch_bench_llama_prints_parsed_results(run_launch, tmp_path, built, gemma):
    out = tmp_path / "llama.json"
    res = run_launch("bench", "llama", "--config", "configs/config_gemma3_270m_cpu.yaml", "--n-prompt", "16",
                     "--n-gen", "4", "--repetitions", "1", "--json", str(out), timeout=300)
    assert res.returncode == 0, res.stderr
    tests = {r["test"] for r in json.loads(out.read_text())["results"]}
    assert tests == {"pp16", "tg4"} and "tokens/s" in res.stdout
