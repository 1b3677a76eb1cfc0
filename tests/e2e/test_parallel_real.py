"""Tier 2: real mpirun (RPC across ranks) and real replicas on CPU with Gemma."""
import os
import signal
import threading
import time
from pathlib import Path

import openai

from launcher.binaries import mpirun_path
from launcher.net import free_ports
from launcher.supervise.proctree import marked_pids
from launcher.testing.launched import wait_for
from tests.e2e.conftest import GEMMA

PROMPT = "The history of the printing press begins"
RPC = """model: embedded:gemma3-270m
model_alias: gemma
n_ctx: 2048
n_parallel: 1
seed: 42
port: PORT
parallel: {mode: rpc, ranks: 2, rpc_port: RPCPORT}
engine: {max_restarts: MAXR, restart_backoff: 0.2, exit_on_failure: EXIT}
"""


def greedy(run, n=24) -> str:
    c = openai.OpenAI(base_url=run.url + "/v1", api_key="x", max_retries=0, timeout=120)
    return c.completions.create(model="gemma", prompt=PROMPT, max_tokens=n, temperature=0).choices[0].text


def rpc_config(max_restarts=0, exit_on_failure=True) -> str:
    return (RPC.replace("RPCPORT", str(next(free_ports()))).replace("MAXR", str(max_restarts))
            .replace("EXIT", "true" if exit_on_failure else "false"))


def job_marker(run) -> str:
    return f"gemma@{run.models()['engines'][0]['url'].rsplit(':', 1)[1]}"


def rpc_server_pid(marker: str) -> int:
    for pid in marked_pids(marker):
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            if b"ggml-rpc-server" in fh.read().split(b"\0")[0]:
                return pid
    raise AssertionError("no ggml-rpc-server in the job")


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_rpc_two_ranks_gives_the_single_process_greedy_text(launch):
    # The RPC device computes with plain (not repacked) CPU weights; so does `repack: false`.
    single = launch(GEMMA.replace("n_parallel: 2", "n_parallel: 1\nseed: 42\nrepack: false")
                    .replace("n_ctx: 4096", "n_ctx: 2048"))
    expected = greedy(single)
    single.proc.send_signal(signal.SIGINT)
    single.proc.wait(30)
    run = launch(rpc_config())
    marker = job_marker(run)
    assert len(marked_pids(marker)) >= 4  # mpirun, 2 rank wrappers, llama-server, rpc-server
    log = run.log.read_text()
    assert "[rank 1]" in log and "ggml-rpc-server" in log
    assert greedy(run) == expected


def test_rpc_rank1_killed_brings_the_job_down_and_leaves_nothing(launch):
    run = launch(rpc_config(max_restarts=0, exit_on_failure=True))
    marker = job_marker(run)
    os.kill(rpc_server_pid(marker), signal.SIGKILL)
    assert run.proc.wait(60) == 1
    assert "failed and engine.exit_on_failure is set" in run.log.read_text()
    assert wait_for(lambda: marked_pids(marker) == [], 5)


def test_rpc_rank1_killed_restarts_the_job_when_configured(launch):
    run = launch(rpc_config(max_restarts=2, exit_on_failure=False))
    marker = job_marker(run)
    os.kill(rpc_server_pid(marker), signal.SIGKILL)
    wait_for(lambda: run.models()["state"] != "ready", 10)
    run.wait_ready(120)
    assert run.models()["restarts"] == 1
    assert greedy(run, 4)


REPLICAS = """model: embedded:gemma3-270m
model_alias: gemma
n_ctx: 2048
n_parallel: 2
port: PORT
parallel: {mode: replicas, replicas: 2}
engine: {max_restarts: 3, restart_backoff: 0.5}
"""


def test_replicas_share_traffic_and_survive_a_sigkill_under_load(launch):
    run = launch(REPLICAS)
    c = openai.OpenAI(base_url=run.url + "/v1", api_key="x", max_retries=0, timeout=120)
    outcomes: list[str] = []

    def request(n_tokens: int):
        try:
            text = "".join(ch.choices[0].text for ch in c.completions.create(
                model="gemma", prompt=PROMPT, max_tokens=n_tokens, stream=True,
                extra_body={"ignore_eos": True}) if ch.choices)
            outcomes.append("ok" if text else "empty")
        except openai.APIError as exc:
            outcomes.append(f"error: {type(exc).__name__}")

    threads = [threading.Thread(target=request, args=(48,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    served = [e["served"] for e in run.models()["engines"]]
    assert outcomes == ["ok"] * 4 and all(s >= 1 for s in served), (outcomes, served)

    outcomes.clear()
    victim = run.models()["engines"][0]["pid"]
    threads = [threading.Thread(target=request, args=(200,)) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    os.kill(victim, signal.SIGKILL)
    late = [threading.Thread(target=request, args=(8,)) for _ in range(3)]  # not started before the kill
    for t in late:
        t.start()
    for t in threads + late:
        t.join(180)
    assert not any(t.is_alive() for t in threads + late), "a request hung"
    assert all(o == "ok" or o.startswith("error") for o in outcomes)
    assert outcomes.count("ok") >= 3 + 2  # the late ones and those on the surviving replica
    wait_for(lambda: all(e["state"] == "ready" for e in run.models()["engines"]), 60, 0.2)
    engines = run.models()["engines"]
    assert all(e["state"] == "ready" for e in engines) and run.models()["restarts"] == 1
    assert victim not in [e["pid"] for e in engines]


def test_user_run_mpirun_launch_serves_and_stops_cleanly(tmp_path, start_launch):
    """`mpirun -np 2 launch --config X`: rank 0 serves the gateway, rank 1 the RPC server."""
    port = next(free_ports())
    cfg = tmp_path / "rpc.yaml"
    cfg.write_text(rpc_config().replace("PORT", str(port)))
    mpirun = (mpirun_path(), "-np", "2", "--oversubscribe", "--bind-to", "none") + \
        (("--allow-run-as-root",) if os.geteuid() == 0 else ())
    run = start_launch(["--config", str(cfg)], port, prefix=mpirun)
    c = openai.OpenAI(base_url=run.url + "/v1", api_key="x", max_retries=0, timeout=120)
    assert c.completions.create(model="gemma", prompt=PROMPT, max_tokens=4, temperature=0).choices[0].text
    assert "[rank 1]" in run.log.read_text()
    commands = [command_of(p) for p in run.remember_tree()]
    assert sum("-m launcher --config" in c for c in commands) == 2, commands  # two launcher ranks
    assert any("llama-server" in c for c in commands) and any("ggml-rpc-server" in c for c in commands)
    run.stop()  # Ctrl-C: mpirun forwards it, then ends the job (its exit code is its own)
    assert run.leftovers() == []
