"""Tier 2: the reference documents' own examples, sent as written, against the real build and Gemma.

004 (Llama Switch API): every request body of the document, against a gateway whose models folder holds
Gemma under the document's file names (linked, as model stores are). 002 (Ascend guide): its Python
client, verbatim, in a network namespace where 127.0.0.1:8080 is the gateway.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import pytest

from launcher.net import free_ports
from launcher.testing.launched import Launched, wait_for
from tests.e2e.netns import in_namespace, network_namespace

ROOT = Path(__file__).resolve().parents[2]
DOC_FILES = ("model.gguf", "llama2-7b.gguf", "mistral-7b.gguf", "llama2-7b-chat.gguf")

# 004, "切换模型" (the request example) and the four "配置示例", then the curl example: exactly as written.
SWITCH_BODIES = [
    {"model_path": "model.gguf", "config": {"port": 8080, "threads": 4, "ctx_size": 2048, "batch_size": 512}},
    {"model_path": "llama2-7b-chat.gguf", "config": {"host": "127.0.0.1", "port": 8080, "threads": 8,
                                                     "ctx_size": 4096, "batch_size": 512}},
    {"model_path": "llama2-7b-chat.gguf", "config": {"host": "127.0.0.1", "port": 8080, "threads": 8,
                                                     "n_gpu_layers": 99, "flash_attn": True, "batch_size": 2048,
                                                     "ctx_size": 4096}},
    {"model_path": "llama2-7b-chat.gguf", "config": {"host": "127.0.0.1", "port": 8080, "threads": 8,
                                                     "n_gpu_layers": 99, "split_mode": "layer",
                                                     "tensor_split": "0.5,0.5", "main_gpu": 0, "flash_attn": True}},
    {"model_path": "llama2-7b-chat.gguf", "config": {"host": "127.0.0.1", "port": 8080, "threads": 32,
                                                     "threads_batch": 32, "n_gpu_layers": 99, "flash_attn": True,
                                                     "batch_size": 2048, "ubatch_size": 512, "ctx_size": 4096,
                                                     "mlock": True, "cache_type_k": "f16", "cache_type_v": "f16"}},
    {"model_path": "llama2-7b-chat.gguf", "config": {"port": 8080, "threads": 4, "ctx_size": 2048,
                                                     "batch_size": 512}},
]
# What each body must put on llama-server's command line (the document's names, mapped).
SWITCH_FLAGS = [
    ["--threads 4", "--ctx-size 2048", "--batch-size 512"],
    ["--threads 8", "--ctx-size 4096", "--batch-size 512"],
    ["--threads 8", "--n-gpu-layers 99", "--flash-attn on", "--batch-size 2048", "--ctx-size 4096"],
    ["--threads 8", "--n-gpu-layers 99", "--split-mode layer", "--tensor-split 0.5,0.5", "--main-gpu 0",
     "--flash-attn on"],
    ["--threads 32", "--threads-batch 32", "--n-gpu-layers 99", "--flash-attn on", "--batch-size 2048",
     "--ubatch-size 512", "--ctx-size 4096", "--load-mode mmap+mlock", "--cache-type-k f16", "--cache-type-v f16"],
    ["--threads 4", "--ctx-size 2048", "--batch-size 512"],
]
# 004, "启动基准测试", the curl examples 4 and 5, and the three "常见配置场景": exactly as written.
BENCHMARK_BODIES = [
    {"model_path": "model.gguf", "config": {
        "n_prompt": 512, "n_gen": 128, "n_depth": 0, "batch_size": 2048, "ubatch_size": 512, "cache_type_k": "f16",
        "cache_type_v": "f16", "threads": 32, "cpu_mask": "", "cpu_strict": 0, "poll": 50, "n_gpu_layers": 99,
        "split_mode": "layer", "main_gpu": 0, "no_kv_offload": 0, "flash_attn": 0, "mmap": 1, "numa": "",
        "embeddings": 0, "tensor_split": "0", "repetitions": 5, "priority": 0, "delay": 0, "output": "md",
        "output_err": "none", "verbose": 0, "progress": 0}},
    {"model_path": "llama2-7b-chat.gguf", "config": {"n_prompt": 512, "n_gen": 128, "threads": 32,
                                                     "repetitions": 5, "output": "md", "progress": 1}},
    {"model_path": "llama2-7b-chat.gguf", "config": {"n_prompt": 512, "n_gen": 128, "n_gpu_layers": 99,
                                                     "flash_attn": 1, "batch_size": 2048, "threads": 32,
                                                     "repetitions": 5, "output": "md", "progress": 1}},
    {"model_path": "llama2-7b-chat.gguf", "config": {"n_prompt": 512, "n_gen": 128, "threads": 32,
                                                     "batch_size": 1024, "n_gpu_layers": 0, "mmap": 1,
                                                     "repetitions": 5}},
    {"model_path": "llama2-7b-chat.gguf", "config": {"n_prompt": 512, "n_gen": 128, "n_gpu_layers": 99,
                                                     "flash_attn": 1, "batch_size": 2048, "threads": 32,
                                                     "repetitions": 5}},
    {"model_path": "llama2-7b-chat.gguf", "config": {"n_prompt": 512, "n_gen": 128, "n_gpu_layers": 99,
                                                     "split_mode": "layer", "tensor_split": "0.5,0.5", "main_gpu": 0,
                                                     "flash_attn": 1, "threads": 32, "repetitions": 5}},
]
BENCH_FLAGS = [
    "-p 512 -n 128 -d 0 -b 2048 -ub 512 -ctk f16 -ctv f16 -t 32 --cpu-strict 0 --poll 50 -ngl 99 -sm layer -mg 0 "
    "-nkvo 0 -fa off --load-mode mmap -embd 0 -r 5 --prio 0 --delay 0 -o md -oe json",
    "-p 512 -n 128 -t 32 -r 5 -o md --progress -oe json",
    "-p 512 -n 128 -b 2048 -t 32 -ngl 99 -fa on -r 5 -o md --progress -oe json",
    "-p 512 -n 128 -b 1024 -t 32 -ngl 0 --load-mode mmap -r 5 -o json",
    "-p 512 -n 128 -b 2048 -t 32 -ngl 99 -fa on -r 5 -o json",
    "-p 512 -n 128 -t 32 -ngl 99 -sm layer -mg 0 -fa on -ts 0.5/0.5 -r 5 -o json",
]


@pytest.fixture(scope="module")
def switch_gateway(tmp_path_factory, built, gemma):
    tmp = tmp_path_factory.mktemp("documents")
    models = tmp / "models"
    models.mkdir()
    for name in DOC_FILES:
        os.symlink(gemma, models / name)  # a store linked into the folder, as Hugging Face caches are
    port = next(free_ports())
    cfg = tmp / "llama-switch.yaml"
    cfg.write_text(f"models_dir: models\nmodel: models/llama2-7b.gguf\nmodel_alias: gemma\nn_ctx: 1024\n"
                   f"n_parallel: 1\nport: {port}\n")
    run = Launched(["--config", str(cfg)], f"http://127.0.0.1:{port}", tmp / "launch.log", cwd=str(ROOT))
    run.wait_ready()
    yield run, models
    run.stop()
    assert run.leftovers() == []


def api(run, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(method, run.url + "/api/v1" + path, timeout=60, **kw)


def assert_envelope(resp: httpx.Response, message: str | None = None) -> dict:
    body = resp.json()
    assert resp.status_code == 200 and body["success"] is True and body["error"] == "", body
    assert {"success", "message", "data", "error"} == set(body), body
    if message is not None:
        assert body["message"] == message, body
    return body


def test_models_list_has_the_documents_fields(switch_gateway):
    run, models = switch_gateway
    body = assert_envelope(api(run, "GET", "/models"), "Found 4 GGUF models")
    by_name = {m["name"]: m for m in body["data"]}
    assert set(by_name) == set(DOC_FILES)
    for name, entry in by_name.items():
        assert entry["path"] == str(models / name) and Path(entry["path"]).is_absolute()
        assert isinstance(entry["size"], int) and entry["size"] == 253_113_024
        assert entry["architecture"] == "gemma3" and entry["quantization"] == "Q4_K_M"  # launcher's additions


@pytest.mark.parametrize("i", range(len(SWITCH_BODIES)), ids=lambda i: f"switch-example-{i}")
def test_document_switch_body(switch_gateway, i):
    run, models = switch_gateway
    body = SWITCH_BODIES[i]
    resp = api(run, "POST", "/model/switch", json=body)
    answer = resp.json()
    assert resp.status_code == 200 and answer["success"] is True and answer["data"] is None and answer["error"] == ""
    assert answer["message"].startswith("Model switch initiated")
    assert "port 8080" in answer["message"] and "served by this gateway" in answer["message"]
    name = Path(body["model_path"]).stem

    def status():
        return api(run, "GET", "/model/status", params={"model_name": name}).json()["data"]
    assert wait_for(lambda: status()["state"] in ("ready", "failed"), 120, 0.25)
    st = status()
    assert st["state"] == "ready", st
    assert st["running"] is True and st["model_name"] == name and st["model_path"] == str(models / body["model_path"])
    assert isinstance(st["port"], int) and isinstance(st["process_id"], int) and st["vram_usage"] is None
    assert st["start_time"].endswith("Z") and st["host_rss_mib"] > 50
    with open(f"/proc/{st['process_id']}/cmdline", "rb") as fh:
        cmdline = fh.read().replace(b"\0", b" ").decode()
    for flag in SWITCH_FLAGS[i]:
        assert f" {flag} " in f"{cmdline} ", (flag, cmdline)
    client = openai.OpenAI(base_url=run.url + "/v1", api_key="x", max_retries=0, timeout=120)
    assert client.completions.create(model=name, prompt="Hello", max_tokens=2).choices[0].text is not None
    others = [m for m in api(run, "GET", "/model/status").json()["data"] if m["model_name"] != name]
    assert all(not m["running"] for m in others)  # the switch replaced the running model


def test_document_status_single_and_list(switch_gateway):
    run, _ = switch_gateway
    listing = assert_envelope(api(run, "GET", "/model/status"), "Model status retrieved")["data"]
    assert isinstance(listing, list) and {"running", "model_name", "model_path", "port", "start_time", "process_id",
                                          "vram_usage"} <= set(listing[0])
    running = [m for m in listing if m["running"]][0]
    single = assert_envelope(api(run, "GET", "/model/status", params={"model_name": running["model_name"]}),
                             "Model status retrieved")["data"]
    assert isinstance(single, dict) and single["process_id"] == running["process_id"]
    assert single["start_time"] == running["start_time"]


def test_document_stop_without_a_body(switch_gateway):
    run, _ = switch_gateway
    running = [m for m in api(run, "GET", "/model/status").json()["data"] if m["running"]]
    assert len(running) == 1
    resp = httpx.post(run.url + "/api/v1/model/stop", timeout=60)  # as the document sends it: no body
    assert resp.json() == {"success": True, "message": "Model stopped", "data": None, "error": ""}
    assert not api(run, "GET", "/model/status", params={"model_name": running[0]["model_name"]}).json()["data"][
        "running"]
    client = openai.OpenAI(base_url=run.url + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.APIStatusError) as err:
        client.completions.create(model=running[0]["model_name"], prompt="x", max_tokens=1)
    assert err.value.status_code == 503 and err.value.body["code"] == "model_stopped"


@pytest.mark.parametrize("i", range(len(BENCHMARK_BODIES)), ids=lambda i: f"benchmark-example-{i}")
def test_document_benchmark_body_starts_with_the_mapped_flags(switch_gateway, i):
    """Each body starts a llama-bench task with its parameters mapped; the runs are cancelled (each takes
    a minute on 2 cores with `threads: 32`); the next test runs one to the end."""
    run, models = switch_gateway
    body = BENCHMARK_BODIES[i]
    started = assert_envelope(api(run, "POST", "/benchmark", json=body), "Benchmark started")["data"]
    model = str(models / body["model_path"])
    assert " ".join(started["command"]).endswith(f"-m {model} {BENCH_FLAGS[i]}")
    status = assert_envelope(api(run, "GET", "/benchmark/status", params={"task_id": started["task_id"]}))
    assert status["data"]["task_id"] == started["task_id"] and status["data"]["state"] in ("running", "done")
    assert api(run, "POST", "/benchmark", json=body).status_code == 409  # the devices are locked
    cancelled = assert_envelope(api(run, "POST", "/benchmark/cancel", json={"task_id": started["task_id"]}))
    assert cancelled["data"]["state"] in ("cancelled", "done")


def test_document_basic_benchmark_runs_to_the_end_with_md_output(switch_gateway):
    run, _ = switch_gateway
    body = BENCHMARK_BODIES[1]  # "运行基准测试（基本配置）": output md, progress 1
    task = assert_envelope(api(run, "POST", "/benchmark", json=body))["data"]["task_id"]

    def status():
        return api(run, "GET", "/benchmark/status", params={"task_id": task}).json()["data"]
    assert wait_for(lambda: status()["state"] in ("done", "failed"), 600, 2)
    data = status()
    assert data["state"] == "done", data
    assert data["output_format"] == "md" and data["output"].startswith("| model")  # llama-bench's own table
    assert "pp512" in data["output"] and "tg128" in data["output"]
    assert [r["test"] for r in data["results"]] == ["pp512", "tg128"]
    assert all(r["tokens_per_s"] > 0 and r["repetitions"] == 5 for r in data["results"])


ASCEND_CONFIG = """model: embedded:gemma3-270m
model_alias: deepseek-v2-lite
n_ctx: 512
n_parallel: 1
port: 8080
defaults: {max_tokens: 48}
"""
DRIVER = """
import runpy, sys
from pathlib import Path
from launcher.testing.launched import launched
with launched(["--config", sys.argv[1]], "http://127.0.0.1:8080", Path(sys.argv[3])):
    runpy.run_path(sys.argv[2], run_name="__main__")
"""


def test_ascend_guide_python_client_verbatim(tmp_path, built, gemma):
    """The guide's client (requests + sseclient-py, model "DeepSeek-V2-Lite", 127.0.0.1:8080) unchanged,
    against a gateway whose alias is deepseek-v2-lite, inside a namespace where 8080 is ours."""
    cfg = tmp_path / "ascend.yaml"
    cfg.write_text(ASCEND_CONFIG)
    client = ROOT / "tests" / "reference_examples" / "ascend_guide_client.py"
    with network_namespace("ascend") as ns:
        res = subprocess.run(in_namespace(ns, [sys.executable, "-c", DRIVER, str(cfg), str(client),
                                               str(tmp_path / "launch.log")]),
                             capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:] + (tmp_path / "launch.log").read_text()[-2000:]
    out = res.stdout
    assert out.startswith("流式聊天示例：\n") and "\n[完成]\n" in out and "\n文本补全示例：\n" in out
    streamed = out.split("流式聊天示例：\n", 1)[1].split("\n[完成]", 1)[0]
    completed = out.split("文本补全示例：\n", 1)[1]
    assert streamed.strip() and completed.strip()


def test_the_ascend_client_copy_is_the_documents_code():
    document = ROOT.parent / "shared" / "reference" / "002_a88fb7ad9a6e7a44.txt"
    if not document.exists():
        pytest.skip("the reference documents are not beside this checkout")
    code = document.read_text(encoding="utf-8").split("```python\n", 1)[1].split("```", 1)[0]
    copy = (ROOT / "tests" / "reference_examples" / "ascend_guide_client.py").read_text(encoding="utf-8")
    assert copy.endswith(code)
