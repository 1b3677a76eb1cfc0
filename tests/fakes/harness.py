"""Tier-1 harness: the real gateway and supervisor, in a thread, in front of fake engines."""
from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from launcher.config import load_source
from launcher.gateway.app import create_app
from launcher.net import free_ports
from launcher.plan.model import ModelPlan, ProcessSpec
from launcher.supervise.runner import ModelRunner

FAKE = Path(__file__).with_name("fake_engine.py")


@dataclass
class Running:
    url: str
    runners: list[ModelRunner]
    server: uvicorn.Server
    loop: asyncio.AbstractEventLoop

    def engine_url(self, i: int = 0, model: int = 0) -> str:
        return self.runners[model].upstreams[i].url

    def stats(self, i: int = 0) -> dict:
        return httpx.get(self.engine_url(i) + "/stats").json()

    def call(self, coro):
        """Run a coroutine on the gateway's loop (supervisor objects live there)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)


def fake_plan(name: str, flags: list[str], replicas: int = 1, slots: int = 1) -> ModelPlan:
    ports = free_ports()
    procs = []
    for i in range(replicas):
        port = next(ports)
        argv = (sys.executable, str(FAKE), "--port", str(port), "--slots", str(slots), *flags)
        procs.append(ProcessSpec(f"{name}#{i}", "engine", argv, (), port, f"http://127.0.0.1:{port}/health"))
    return ModelPlan(name, (name, f"{name}.gguf"), "replicas" if replicas > 1 else "single", tuple(procs),
                     upstreams=tuple(f"http://127.0.0.1:{p.port}" for p in procs), slots_per_upstream=slots)


def config_text(extra: str = "") -> str:
    return "model: fake.gguf\nmodel_alias: fake\nengine: {max_restarts: 3, restart_backoff: 0.1, start_timeout: 20}\n" + extra


@contextlib.contextmanager
def gateway(tmp_path: Path, flags: list[str] = (), *, replicas: int = 1, slots: int = 1, extra: str = "",
            keys: tuple[str, ...] = (), wait_ready: bool = True, text: str | None = None, manager=None,
            env: dict | None = None):
    """The real gateway + supervisor over fake engines. `text` is a whole config (several models)."""
    cfg = load_source(text or config_text(extra), str(tmp_path / "c.yaml"), offline=True, env=env).config
    runners = [ModelRunner(fake_plan(spec.name, list(flags), replicas, slots), spec, tmp_path / "logs", echo=False)
               for spec in cfg.models]
    with serving(tmp_path, cfg, runners, keys, wait_ready, manager) as running:
        yield running


@contextlib.contextmanager
def serving(tmp_path, cfg, runners, keys=(), wait_ready=True, manager=None):
    from launcher.gateway.pool import ModelPool
    pool = ModelPool(runners, cfg.gateway.max_loaded, cfg.gateway.load_timeout)
    port = next(free_ports())
    holder: dict = {}

    async def on_start():
        holder["loop"] = asyncio.get_running_loop()
        holder["starts"] = [asyncio.get_running_loop().create_task(r.start()) for r in pool.preload_list()]

    async def on_stop():
        await asyncio.gather(*(r.stop(grace=3) for r in runners))

    app = create_app(runners, cfg.gateway, keys, on_start, on_stop, pool=pool, manager=manager)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    if wait_ready:
        while time.monotonic() < deadline:
            if httpx.get(url + "/ready").status_code == 200:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"fake gateway not ready: {[(r.state, r.last_error) for r in runners]}")
    try:
        yield Running(url, runners, server, holder["loop"])
    finally:
        server.should_exit = True
        thread.join(20)
