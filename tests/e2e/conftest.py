"""Tier 2: the real llama.cpp build, the real Gemma GGUF, the real `launch` CLI, the openai SDK."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from launcher.net import free_ports

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.real


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.real)


@pytest.fixture(scope="session")
def built():
    """The cached CPU build (`make test` builds it first; a cache hit here costs nothing)."""
    from launcher.build import ensure_build, make_request
    tree, _ = ensure_build(make_request("cpu"), quiet=True)
    return tree


@pytest.fixture(scope="session")
def gemma():
    from launcher.models.embedded import ensure
    return ensure("gemma3-270m")


class Launched:
    def __init__(self, proc: subprocess.Popen, url: str, log: Path):
        self.proc, self.url, self.log = proc, url, log

    def models(self) -> dict:
        return httpx.get(self.url + "/v1/models", headers=self.headers).json()["data"][0]

    headers: dict = {}

    def engine_pids(self) -> list[int]:
        return [e["pid"] for e in self.models()["engines"]]

    def wait_ready(self, timeout=180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"launch exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/ready", timeout=2).status_code == 200:
                    return
            time.sleep(0.25)
        raise RuntimeError(f"launch not ready after {timeout}s:\n{self.log.read_text()[-3000:]}")


@pytest.fixture
def launch(tmp_path, built, gemma):
    """launch(config_yaml_text, env=...) -> Launched; every process is reaped afterwards."""
    started: list[Launched] = []

    def start(text: str, env: dict | None = None, wait: bool = True) -> Launched:
        port = next(free_ports())
        cfg = tmp_path / f"config{len(started)}.yaml"
        cfg.write_text(text.replace("PORT", str(port)))
        log = tmp_path / f"launch{len(started)}.log"
        full_env = dict(os.environ, **(env or {}))
        proc = subprocess.Popen([sys.executable, "-m", "launcher", "--config", str(cfg)], cwd=ROOT, env=full_env,
                                stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        run = Launched(proc, f"http://127.0.0.1:{port}", log)
        started.append(run)
        if wait:
            run.wait_ready()
        return run

    yield start
    for run in started:
        if run.proc.poll() is None:
            run.proc.send_signal(signal.SIGINT)
            try:
                run.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(run.proc.pid, signal.SIGKILL)
                run.proc.wait()


GEMMA = """model: embedded:gemma3-270m
model_alias: gemma
n_ctx: 4096
n_parallel: 2
port: PORT
engine: {max_restarts: 3, restart_backoff: 0.2}
"""
