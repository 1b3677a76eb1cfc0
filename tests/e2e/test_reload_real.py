"""Tier 2: the config edited under a running `launch --watch-config` (and reloaded by SIGHUP), with fake
engines started through the normal path: which engines restarted (by pid), a stream on an unchanged model
that goes on, an invalid edit that changes nothing and is reported, then its fix."""
from __future__ import annotations

import signal
import sys
import threading

import httpx

from launcher.net import free_ports
from launcher.testing.launched import wait_for
from tests.fakes.sse import follow

CONFIG = """port: {port}
engine: {{binary: {wrapper}, start_timeout: 30}}
models:
  - {{model: embedded:gemma3-270m, model_alias: alpha, n_ctx: 2048}}
  - {{model: embedded:gemma3-270m, model_alias: beta, n_ctx: 2048}}
"""


def pids(url: str) -> dict[str, list]:
    return {m["id"]: [e["pid"] for e in m["engines"]] for m in httpx.get(url + "/v1/models").json()["data"]}


def write(path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)  # as editors save: the watcher must see a replaced file


def launch_fakes(start_launch, tmp_path, *extra: str, delay: float = 0.0):
    """`launch --config live.yaml` (two models on fake engines); (run, config path, its text)."""
    wrapper = tmp_path / "fake-engine"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m launcher.testing.fake_engine --delay {delay} \"$@\"\n")
    wrapper.chmod(0o755)
    port = next(free_ports())
    cfg = tmp_path / "live.yaml"
    text = CONFIG.format(port=port, wrapper=wrapper)
    cfg.write_text(text)
    return start_launch(["--config", str(cfg), *extra], port), cfg, text


def test_watch_config_restarts_only_what_changed_and_keeps_streams(start_launch, tmp_path):
    run, cfg, text = launch_fakes(start_launch, tmp_path, "--watch-config", delay=0.02)
    before = pids(run.url)
    seen, stop = [], threading.Event()
    follower = threading.Thread(target=follow, args=(run.url + "/api/events", seen, stop, "config"), daemon=True)
    follower.start()

    stream: dict = {}

    def long_stream():  # 150 tokens, 20 ms apart: runs across the reload
        with httpx.stream("POST", run.url + "/v1/completions", timeout=60,
                          json={"model": "alpha", "prompt": "x", "max_tokens": 150, "stream": True}) as resp:
            stream["lines"] = [ln for ln in resp.iter_lines() if ln.startswith("data: ")]
    streamer = threading.Thread(target=long_stream)
    streamer.start()
    wait_for(lambda: False, 0.5)  # the stream is under way

    # 1. change beta's n_ctx, add gamma
    write(cfg, text.replace("model_alias: beta, n_ctx: 2048", "model_alias: beta, n_ctx: 4096")
          + "  - {model: embedded:gemma3-270m, model_alias: gamma}\n")
    assert wait_for(lambda: any(e["ok"] for e in seen), 30), (seen, run.log_tail())
    assert seen[-1]["summary"] == "added gamma; restarted beta"
    assert wait_for(lambda: set(pids(run.url)) == {"alpha", "beta", "gamma"}
                    and all(p for v in pids(run.url).values() for p in v), 30)
    after = pids(run.url)
    assert after["alpha"] == before["alpha"] and after["beta"] != before["beta"]
    streamer.join(60)
    assert stream["lines"][-1] == "data: [DONE]" and len(stream["lines"]) == 152  # 150 tokens, finish, [DONE]
    assert '"error"' not in "".join(stream["lines"])

    # 2. an invalid edit: reported, nothing changes
    broken = cfg.read_text().replace("n_ctx: 4096", "n_ctx: lots")
    write(cfg, broken)
    assert wait_for(lambda: any(not e["ok"] for e in seen), 30), seen
    assert "n_ctx" in " ".join(next(e for e in seen if not e["ok"])["problems"])
    assert pids(run.url) == after and "not reloaded" in run.log_tail(20000)

    # 3. fixed (gamma dropped on the way): applied
    write(cfg, broken.replace("n_ctx: lots", "n_ctx: 4096").replace(
        "  - {model: embedded:gemma3-270m, model_alias: gamma}\n", ""))
    assert wait_for(lambda: seen[-1]["ok"] and seen[-1]["summary"] == "removed gamma", 30), seen
    assert wait_for(lambda: pids(run.url) == {"alpha": after["alpha"], "beta": after["beta"]}, 30)
    stop.set()


def test_sighup_reloads_and_a_new_port_is_refused(start_launch, tmp_path):
    run, cfg, text = launch_fakes(start_launch, tmp_path)
    port = httpx.URL(run.url).port
    before = pids(run.url)
    write(cfg, text.replace(f"port: {port}", f"port: {port + 1}"))
    run.proc.send_signal(signal.SIGHUP)  # it used to kill launcher (the default action)
    assert wait_for(lambda: "restart" in run.log_tail(5000) and "not reloaded" in run.log_tail(5000), 15)
    assert run.proc.poll() is None and pids(run.url) == before
    write(cfg, text.replace("model_alias: alpha, n_ctx: 2048", "model_alias: alpha, n_ctx: 1024"))
    run.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "reloaded: restarted alpha" in run.log_tail(5000), 30), run.log_tail()
    assert wait_for(lambda: pids(run.url)["alpha"] != before["alpha"] and all(pids(run.url)["alpha"]), 30)
    assert pids(run.url)["beta"] == before["beta"]
