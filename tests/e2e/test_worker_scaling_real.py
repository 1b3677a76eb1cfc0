"""Tier 2: a worker scaled by load (`processes: {min: 1, max: 3}`), real processes behind the real gateway.
Concurrent clients from 0 to 6 and back: processes go up to max while requests wait, every request completes,
and after the grace period the worker is back at min; /registry and /metrics say so all along."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from launcher.net import free_ports
from launcher.testing.launched import launched
from launcher.worker import Client

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "workers"
CONFIG = """port: {port}
workers:
  - app: slow_app:app
    path: {path}
    threads: 1
    processes: {{min: 1, max: 3}}
    scale_up_after: 0.3
    scale_down_after: 2
"""


def scale(url: str) -> dict:
    [worker] = httpx.get(url + "/registry").json()["local"]
    return worker["scale"] | {"pids": sorted(p["pid"] for p in worker["processes"])}


def wait_for(check, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := check()):
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_processes_follow_the_load_and_no_request_is_lost(tmp_path):
    port = next(free_ports())
    cfg = tmp_path / "scaled.yaml"
    cfg.write_text(CONFIG.format(port=port, path=FIXTURES))
    url = f"http://127.0.0.1:{port}"
    with launched(["--config", str(cfg)], url, tmp_path / "launch.log"):
        assert scale(url)["running"] == 1 and scale(url)["min"] == 1 and scale(url)["max"] == 3

        def call(_):
            with Client(endpoint=url) as client:
                return client.infer("slow", {"x": [1]})["pid"][0]

        seen_running = []
        with ThreadPoolExecutor(6) as pool:
            calls = pool.map(call, range(60))   # 60 x 0.3 s of work, 6 at a time: requests wait
            while len(seen_running) < 200:
                seen_running.append(scale(url)["running"])
                if seen_running[-1] == 3:
                    break
                time.sleep(0.1)
            pids = list(calls)
        assert len(pids) == 60                           # every request answered
        assert max(seen_running) == 3                    # up to max, and no further
        assert len(set(pids)) == 3                       # the extra processes took requests
        metrics = httpx.get(url + "/metrics").text
        assert 'launcher_worker_processes{worker="slow_app"}' in metrics
        down = wait_for(lambda: (s := scale(url))["running"] == 1 and s, 30)
        assert len(down["pids"]) == 1 and down["queued"] == 0
        with Client(endpoint=url) as client:              # what stays serves on
            assert client.infer("slow", {"x": [1]})["pid"][0] == down["pids"][0]
