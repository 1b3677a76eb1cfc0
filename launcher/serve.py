"""`launch --config X`: config -> plan -> build -> supervise -> gateway, in one event loop.

SIGTERM or Ctrl-C once: drain (new requests 503 shutting_down, running ones finish up to
gateway.drain_timeout), stop the engines, exit 0. Twice: stop now (engines are SIGKILLed).
"""
from __future__ import annotations

import asyncio
import atexit
import gc
import logging
import signal
import socket
import sys
from dataclasses import replace
from pathlib import Path

import uvicorn

from .binaries import Binaries
from .config.convert import inherited_sections
from .config.inherit import merged
from .config.model import Config, ModelSpec
from .config.source import Source
from .devices import lookup
from .errors import LauncherError, StartError
from .gateway.app import create_app, reconfigure
from .gateway.keys import load_keyring
from .gateway.limits import http_protocol
from .gateway.manage.manager import ModelManager
from .gateway.pool import ModelPool
from .gateway.room import Room
from .gateway.usage import UsageStore, default_path
from .models.embedded import model_file
from .net import free_ports, port_in_use
from .paths import cache_dir
from .plan import host_here, make_plan, plan_for_here
from .plan.here import gateway_ports, with_placements
from .plan.model import WORKER_KEY_ENV, ModelPlan
from .prepare import ensure_models, prepare_binaries
from .reload import Reloader, watch
from .supervise.deployment import Deployment
from .supervise.events import Event, EventKind
from .supervise.logs import HubHandler
from .supervise.process import ManagedProcess
from .validate import validate_source

log = logging.getLogger("launcher")


def build_manager(config: Config, deployment: Deployment, pool: ModelPool, binaries: Binaries) -> ModelManager:
    """The /api/v1 service: new models are validated like config files and planned like them."""
    def spec_for(path: str, settings: dict, template: ModelSpec | None) -> ModelSpec:
        inherited = inherited_sections(template) if template else {}
        doc = {"model": path, **merged(inherited, settings)}
        return validate_source(Source("<switch request>", doc)).config.models[0]

    def plan_for(spec: ModelSpec) -> ModelPlan:
        one = replace(config, models=(spec,))
        return make_plan(one, lookup(), binaries, free_ports(exclude=gateway_ports(config)), host_here("api")).models[0]

    return ModelManager(deployment, pool, management_folders(config), spec_for, plan_for, binaries.llama_bench,
                        config.gateway.local_url)


def usage_path(config: Config) -> Path:
    """gateway.usage_db, else a file per config under the cache directory."""
    return Path(config.gateway.usage_db) if config.gateway.usage_db else default_path(config.file, cache_dir())


def management_folders(config: Config) -> list[str]:
    """What /api/v1 lists and switches within: models_dir, else the folders of the configured models."""
    if config.models_dir:
        return [config.models_dir]
    return list(dict.fromkeys(str(Path(model_file(s)).parent) for s in config.models))


def serve(config: Config, *, binaries: Binaries | None = None, echo: bool = True,
          plan_models: tuple[ModelPlan, ...] | None = None, watch_config: bool = False) -> int:
    """Serve until stopped. `plan_models` replaces the planned models (used under a user's mpirun).
    SIGHUP reloads the config file (reload.py); `watch_config` also reloads it whenever it changes."""
    logging.basicConfig(level=logging.INFO, format="[launcher] %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per health poll is noise
    gw = config.gateway
    for port, key in ((gw.port, "port"), (gw.grpc_port, "gateway.grpc_port"), (gw.openai_port, "gateway.openai_port")):
        if port and port_in_use(gw.host, port):  # before anything starts
            raise StartError(f"port {port} on {gw.host} is already in use: stop what runs there or set `{key}:`")
    keyring = load_keyring(gw)
    keys = keyring.secrets
    usage = UsageStore(usage_path(config))   # a corrupt or locked file stops us here, before any engine starts
    ensure_models(config)
    binaries = binaries or prepare_binaries(config)
    plan = plan_for_here(config, binaries=binaries)
    config = with_placements(config, plan.placements)   # the models' devices as the plan placed them
    models = plan_models or plan.models
    log_dir = Path(gw.log_dir) if gw.log_dir else cache_dir() / "logs" / Path(config.file).stem
    # Workers call back into the gateway (context.call) with its key, which never goes into a plan.
    secret = {WORKER_KEY_ENV: keys[0]} if keys else {}
    deployment = Deployment(lambda spec: ManagedProcess(spec, log_dir, echo,
                                                        secret if spec.role == "worker" else None))
    logging.getLogger("launcher").addHandler(HubHandler(deployment.logs))  # launcher's own lines in /logs too
    for model_plan, spec in zip(models, config.models):
        deployment.add(model_plan, spec)
    for worker_plan, worker in zip(plan.workers, config.workers):
        deployment.add_worker(worker_plan, worker)
    atexit.register(deployment.kill_now)
    pool = ModelPool(deployment, gw.max_loaded, gw.load_timeout, Room.from_placements(plan.placements))
    outcome = {"code": 0}
    server: uvicorn.Server | None = None

    def stop_serving(code: int) -> None:
        outcome["code"] = code
        if server:
            server.should_exit = True

    def on_event(event: Event) -> None:
        if event.kind != EventKind.FAILED:
            return
        runner = deployment.find(event.model)
        if runner is not None and runner.spec.engine.exit_on_failure:
            log.error("model %s failed and engine.exit_on_failure is set: stopping", event.model)
            stop_serving(1)

    deployment.events.subscribe(on_event)

    async def start_all() -> None:
        try:
            preload = pool.preload_list()
            for w in deployment.workers:
                w.mark_starting()
            await asyncio.gather(*(r.start() for r in preload + list(deployment.workers)))
            for r in preload:
                pool.touch(r)
            names = ", ".join(r.name for r in preload + list(deployment.workers)) or "nothing preloaded"
            log.info("ready: %s on http://%s:%d/v1 (logs in %s)", names, gw.host, gw.port, log_dir)
        except StartError as exc:
            log.error("%s", exc)
            stop_serving(1)

    background: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

    def spawn(coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        background.add(task)
        task.add_done_callback(background.discard)

    async def on_start() -> None:
        spawn(start_all())
        # Everything loaded so far (FastAPI, pydantic, the routes) lives as long as launcher: out of the
        # collector's sight, so its collections scan only what requests allocate (measured: `bench cost`).
        gc.freeze()
        loop = asyncio.get_running_loop()
        if reloader is None:
            loop.add_signal_handler(signal.SIGHUP, lambda: log.warning(
                "SIGHUP: nothing to reload (%s)", "the ranks of an mpirun job keep their plan" if plan_models
                else "the config was not read from a file"))
            return
        loop.add_signal_handler(signal.SIGHUP, lambda: spawn(reloader.reload()))
        if watch_config:
            spawn(watch(config.file, reloader.reload))

    async def on_stop() -> None:
        await deployment.stop_all(0.0 if server and server.force_exit else 10.0)

    app = create_app(deployment, gw, pool=pool, keys=keys, keyring=keyring, usage=usage, manager=build_manager(config, deployment, pool, binaries),
                     on_start=on_start, on_stop=on_stop, exiting=lambda: bool(server and server.should_exit),
                     grpc_on_http_port=True)
    reloader = None
    if Path(config.file).is_file() and plan_models is None:
        reloader = Reloader(config.file, config, deployment, pool,
                            lambda new: {m.name: m for m in plan_for_here(new, binaries=binaries).models},
                            lambda new_gateway: reconfigure(app, new_gateway))
    elif watch_config:
        raise LauncherError("--watch-config needs a config file")
    server = DrainingServer(uvicorn.Config(app, host=gw.host, port=gw.port, log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=5, lifespan="on",
                                           http=http_protocol(gw.header_timeout, app.state.grpc)),
                            app.state.drain)
    try:
        server.run(sockets=[server.config.bind_socket()] + ([_listening(gw.host, gw.openai_port)]
                                                           if gw.openai_port else []))
    except KeyboardInterrupt:
        pass
    return outcome["code"]


def _listening(host: str, port: int) -> socket.socket:
    """A second listening socket for the same app (gateway.openai_port), bound as uvicorn binds its own."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class DrainingServer(uvicorn.Server):
    """uvicorn's server, but the first SIGTERM or Ctrl-C drains (drain.py) before the usual shutdown, and
    a drained launcher exits 0 (uvicorn would re-raise the signal: 143 for SIGTERM). A second signal
    stops at once."""

    def __init__(self, config: uvicorn.Config, drain):
        super().__init__(config)
        self.drain = drain
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining: asyncio.Task | None = None

    async def startup(self, sockets=None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame) -> None:
        if self.drain.draining or self.should_exit or self._loop is None:
            self.force_exit = self.should_exit = True
            return
        self._loop.call_soon_threadsafe(self._begin_drain)

    def _begin_drain(self) -> None:
        async def drain_then_exit():
            await self.drain.run()
            self.should_exit = True
        self._draining = asyncio.get_running_loop().create_task(drain_then_exit())
