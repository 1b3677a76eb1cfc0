"""Tier 2 on a simulated Ascend host (tests/fakes/ascend_host.py): stand-in npu-smi and hccn_tool replaying
recorded outputs, a CANN install tree, and a stand-in engine in place of the fork's llama-server and
llama-mpi-server; launch, mpirun, the gateway and the openai SDK are real. Each launch runs in its own
network namespace, so the configs' fixed 127.0.0.1:8080 is free."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from launcher.testing.launched import wait_for
from tests.e2e.clients import CHAT
from tests.e2e.netns import in_namespace, network_namespace
from tests.fakes.ascend_host import ENGINE_DIR, AscendHost

ROOT = Path(__file__).resolve().parents[2]
EIGHT = "0,1,2,3,4,5,6,7"
CLIENT = CHAT   # inside the namespace: wait for the gateway, then one chat through the openai SDK


@pytest.fixture
def host(tmp_path, built):
    return AscendHost(tmp_path / "host")


def doctor(host: AscendHost, *args: str) -> subprocess.CompletedProcess:
    return host.run([sys.executable, "-m", "launcher", "doctor", *args])


def serve_and_chat(host: AscendHost, argv: list[str], model: str, env: dict[str, str], exit_zero: bool = True) -> dict:
    """Start argv on the host in a namespace of its own, chat once through the gateway, stop it (SIGTERM) and
    check that no engine process is left. launch exits 0 after SIGTERM; mpirun reports the signal itself."""
    with network_namespace("ascend") as ns:
        proc = host.start(argv, ns, host.env(**env))
        try:
            res = subprocess.run(in_namespace(ns, [sys.executable, "-c", CLIENT, "http://127.0.0.1:8080", model]),
                                 capture_output=True, text=True, timeout=240, cwd=ROOT)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                code = proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                code = proc.wait()
        log = (host.root / "launch.log").read_text(errors="replace")
        assert res.returncode == 0, res.stderr[-3000:] + log[-3000:]
        assert code == 0 or not exit_zero, log[-3000:]
        records = host.records()
        assert wait_for(lambda: not any(Path(f"/proc/{r['pid']}").exists() for r in records), 20), records
        return json.loads(res.stdout)


def test_doctor_on_a_healthy_host_finds_nothing_wrong(host):
    res = doctor(host)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert out.startswith("launch doctor: Ascend host (npu-smi lists 8 NPU(s))")
    for line in ("driver          25.2.0 (npu-smi)", "firmware        7.7.0.6.236",
                 "CANN toolkit    8.2.RC1 at /usr/local/Ascend/ascend-toolkit/latest",
                 "driver/toolkit  driver 25.2.0 suits CANN 8.2.RC1", f"8 visible: [{EIGHT.replace(',', ', ')}], 910B3",
                 "HCCN            links UP: 0=192.168.100.101, 1=192.168.100.102"):
        assert line in out, out
    assert "0 error(s)" in out


def test_doctor_says_the_toolkit_was_not_sourced_and_how_to(tmp_path, built):
    host = AscendHost(tmp_path / "host", sourced=False)
    res = doctor(host)
    assert res.returncode == 1
    assert "error  set_env.sh      not sourced" in res.stdout
    assert "fix: source /usr/local/Ascend/ascend-toolkit/set_env.sh" in res.stdout


def test_doctor_catches_a_driver_older_than_the_toolkit_needs(tmp_path, built):
    host = AscendHost(tmp_path / "host", driver="23.0.6", toolkit="8.2.RC1")
    res = doctor(host)
    assert res.returncode == 1
    assert "driver 23.0.6 is older than CANN 8.2.RC1 needs (25.2.0 or newer)" in res.stdout


def test_doctor_names_an_unhealthy_chip_and_a_busy_one(tmp_path, built):
    res = doctor(AscendHost(tmp_path / "sick", chips="910b3x8_unhealthy"))
    assert res.returncode == 1
    assert "error  NPU 3" in res.stdout and "export ASCEND_RT_VISIBLE_DEVICES=0,1,2,4,5,6,7" in res.stdout
    res = doctor(AscendHost(tmp_path / "busy", chips="910b3x8_busy"))
    assert res.returncode == 0  # a warning: the NPU works, another process holds most of its memory
    assert "warn   NPU 1" in res.stdout and "61962 of 65536 MB in use by python3 (pid 4242, 58592 MB)" in res.stdout


def test_doctor_with_a_config_checks_it_on_this_host(host):
    host.model("DeepSeek-V2-Lite-Chat-Q8_0.gguf")
    res = doctor(host, "--config", "configs/config_deepseek_v2_lite.yaml")
    assert "config_deepseek_v2_lite.yaml: valid on this machine" in res.stdout, res.stdout + res.stderr
    assert "memory deepseek-v2-lite" in res.stdout


@pytest.mark.parametrize("config,visible", [("config_deepseek_v2_lite", "0"), ("config_deepseek_v2", EIGHT)],
                         ids=["guide-line-1-one-npu", "guide-line-2-layer-split"])
def test_the_guides_llama_server_lines_run_as_launch_lines(host, config, visible):
    """`ASCEND_RT_VISIBLE_DEVICES=V ./build/bin/llama-server --config configs/X.yaml` as
    `ASCEND_RT_VISIBLE_DEVICES=V launch --config configs/X.yaml`: the same program with the same variable and
    the config's own keys, behind the gateway."""
    data = yaml.safe_load((ROOT / "configs" / f"{config}.yaml").read_text())
    host.model(Path(data["model"]).name)
    answer = serve_and_chat(host, ["launch", "--config", f"configs/{config}.yaml"], data["model_alias"],
                            {"ASCEND_RT_VISIBLE_DEVICES": visible, "ASCEND_LLAMA_BIN": ENGINE_DIR})
    assert answer["content"]
    (engine,) = host.records()
    assert engine["argv"][0] == f"{ENGINE_DIR}/llama-server" and engine["argv"][1] == "--config"
    assert engine["env"]["ASCEND_RT_VISIBLE_DEVICES"] == visible
    assert engine["env"]["ASCEND_TOOLKIT_HOME"] == "/usr/local/Ascend/ascend-toolkit/latest"  # set_env.sh's
    guide_keys = {k: v for k, v in data.items() if k not in ("engine", "port")}
    assert {k: engine["config"][k] for k in guide_keys} == guide_keys  # every key as the user wrote it
    assert engine["config"]["port"] != 8080  # the engine's internal port: 8080 is the gateway's


def test_users_mpirun_runs_the_ep_config_as_every_rank(host):
    """`mpirun -np 2 launch --config configs/config_deepseek_v2_lite_ep.yaml`: rank 0 serves the gateway and
    starts llama-mpi-server, rank 1 becomes llama-mpi-server; both with the job's NPUs and the rank table."""
    host.model("DeepSeek-V2-Lite-Chat-Q8_0.gguf")
    argv = ["mpirun", "-np", "2", "launch", "--config", "configs/config_deepseek_v2_lite_ep.yaml"]
    answer = serve_and_chat(host, argv, "deepseek-v2-lite", {"ASCEND_LLAMA_BIN": ENGINE_DIR}, exit_zero=False)
    assert answer["content"]
    ranks = sorted(host.records(), key=lambda r: r["rank"])
    assert [(r["rank"], r["program"]) for r in ranks] == [(0, "llama-mpi-server"), (1, "llama-mpi-server")]
    for r in ranks:
        env = r["env"]
        assert env["ASCEND_RT_VISIBLE_DEVICES"] == "0,1" and env["OMPI_COMM_WORLD_SIZE"] == "2"
        assert env["HCCL_CONNECT_TIMEOUT"] == "600" and env["RANK_TABLE_FILE"].endswith("deepseek-v2-lite.hccl.json")
        assert r["config"]["tp_size"] == 2 and r["config"]["ep_size"] == 2 and r["config"]["enable_mla"] is True
    table = json.loads(Path(ranks[0]["env"]["RANK_TABLE_FILE"]).read_text())
    assert [(d["device_id"], d["device_ip"], d["rank_id"]) for d in table["server_list"][0]["device"]] == \
        [("0", "192.168.100.101", "0"), ("1", "192.168.100.102", "1")]


def test_a_guide_style_config_builds_nothing_when_the_host_has_no_cann_compiler(host, tmp_path):
    """The guide's keys only (the backend, devices and layout are the machine's): a CANN build is refused with
    what is missing; pointed at an engine (LLAMA_SERVER_PATH), it serves on every visible NPU."""
    model = host.model("DeepSeek-V2-Chat-Q4_0.gguf")
    cfg = tmp_path / "guide.yaml"
    cfg.write_text(f"model: {model}\nn_gpu_layers: 99\nsplit_mode: layer\nn_ctx: 4096\nn_parallel: 2\nport: 8080\n")
    res = host.run(["launch", "--config", str(cfg)], env=host.env(ASCEND_RT_VISIBLE_DEVICES=EIGHT))
    assert res.returncode != 0
    assert "has no include/acl/acl.h" in res.stderr and "LLAMA_SERVER_PATH" in res.stderr, res.stderr[-2000:]
    answer = serve_and_chat(host, ["launch", "--config", str(cfg)], "DeepSeek-V2-Chat-Q4_0",
                            {"ASCEND_RT_VISIBLE_DEVICES": EIGHT, "LLAMA_SERVER_PATH": f"{ENGINE_DIR}/llama-server"})
    assert answer["content"]
    (engine,) = host.records()
    argv = " ".join(engine["argv"])
    assert engine["env"]["ASCEND_RT_VISIBLE_DEVICES"] == EIGHT
    assert "--split-mode layer" in argv and "--tensor-split " + ",".join(["65536"] * 8) in argv
