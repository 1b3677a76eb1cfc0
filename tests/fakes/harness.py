"""Tier-1 harness: the real gateway and supervisor, in a thread, in front of fake engines."""
from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import uvicorn

from launcher.gateway.app import create_app
from launcher.gateway.keys import ANONYMOUS, Keyring, load_keyring
from launcher.gateway.limits import http_protocol
from launcher.gateway.pool import ModelPool
from launcher.net import free_ports
from launcher.plan.model import ModelPlan, ProcessSpec
from launcher.supervise.deployment import Deployment
from launcher.supervise.process import ManagedProcess
from launcher.supervise.runner import ModelRunner
from launcher.testing.launched import wait_for
from launcher.validate import load_source

FAKE = (sys.executable, "-m", "launcher.testing.fake_engine")


@dataclass
class Running:
    url: str
    deployment: Deployment
    server: uvicorn.Server
    loop: asyncio.AbstractEventLoop
    app: object = None

    @property
    def runners(self) -> tuple[ModelRunner, ...]:
        return self.deployment.models

    def engine_url(self, i: int = 0, model: int = 0) -> str:
        return self.runners[model].upstreams[i].url

    def stats(self, i: int = 0) -> dict:
        return httpx.get(self.engine_url(i) + "/stats").json()

    def call(self, coro):
        """Run a coroutine on the gateway's loop (supervisor objects live there)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)


# One generator for the whole test run: it never hands out a port twice, so two fake engines (or an engine and
# a gateway) planned before any of them binds cannot be given the same one.
PORTS = free_ports()


def fake_plan(name: str, flags: list[str], replicas: int = 1, slots: int = 1) -> ModelPlan:
    ports = PORTS
    procs = []
    for i in range(replicas):
        port = next(ports)
        argv = (*FAKE, "--port", str(port), "--slots", str(slots), *flags)
        procs.append(ProcessSpec(f"{name}#{i}", "engine", argv, (), port, f"http://127.0.0.1:{port}/health"))
    return ModelPlan(name, (name, f"{name}.gguf"), "replicas" if replicas > 1 else "single", tuple(procs),
                     upstreams=tuple(f"http://127.0.0.1:{p.port}" for p in procs), slots_per_upstream=slots)


def config_text(extra: str = "") -> str:
    return "model: fake.gguf\nmodel_alias: fake\nengine: {max_restarts: 3, restart_backoff: 0.1, start_timeout: 20}\n" + extra


def fake_deployment(tmp_path: Path) -> Deployment:
    return Deployment(lambda spec: ManagedProcess(spec, tmp_path / "logs", echo=False))


@contextlib.contextmanager
def gateway(tmp_path: Path, flags: list[str] = (), *, replicas: int = 1, slots: int = 1, extra: str = "",
            keys: tuple[str, ...] = (), wait_ready: bool = True, text: str | None = None, manager=None,
            env: dict | None = None, usage=None):
    """The real gateway + supervisor over fake engines. `text` is a whole config (several models).
    `manager(deployment, pool)` builds the /api/v1 service, when given."""
    cfg = load_source(text or config_text(extra), str(tmp_path / "c.yaml"), offline=True, env=env).config
    deployment = fake_deployment(tmp_path)
    for spec in cfg.models:
        plan = fake_plan(spec.name, list(flags), replicas, slots)
        deployment.add(replace(plan, aliases=tuple(dict.fromkeys(plan.aliases + spec.served_aliases))), spec)
    with serving(cfg, deployment, keys, wait_ready, manager, usage) as running:
        yield running


@contextlib.contextmanager
def serving(cfg, deployment: Deployment, keys=(), wait_ready=True, manager=None, usage=None):
    pool = ModelPool(deployment, cfg.gateway.max_loaded, cfg.gateway.load_timeout)
    port = next(PORTS)
    holder: dict = {}

    async def on_start():
        holder["loop"] = asyncio.get_running_loop()
        holder["starts"] = [asyncio.get_running_loop().create_task(r.start()) for r in pool.preload_list()]

    async def on_stop():
        await deployment.stop_all(grace=3)

    named = load_keyring(replace(cfg.gateway, api_keys=(), api_key_file=None, api_key_env=None))
    keyring = Keyring([(k, ANONYMOUS) for k in keys] + list(named.entries))
    app = create_app(deployment, cfg.gateway, pool=pool, keys=keyring.secrets, keyring=keyring, usage=usage,
                     manager=manager(deployment, pool) if manager else None, on_start=on_start, on_stop=on_stop,
                     grpc_on_http_port=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                           http=http_protocol(cfg.gateway.header_timeout, app.state.grpc)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_for(lambda: server.started, 30), "the gateway did not start"
    url = f"http://127.0.0.1:{port}"
    if wait_ready:
        assert wait_for(lambda: httpx.get(url + "/ready").status_code == 200, 30), \
            f"fake gateway not ready: {[(r.state, r.last_error) for r in deployment.models]}"
    try:
        yield Running(url, deployment, server, holder["loop"], app)
    finally:
        server.should_exit = True
        thread.join(20)
