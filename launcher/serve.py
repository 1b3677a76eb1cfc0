"""`launch --config X`: config -> plan -> build -> supervise -> gateway, in one event loop.

Ctrl-C once: stop accepting, let running requests finish (bounded), stop the engines.
Ctrl-C twice: stop now (engines are SIGKILLed). uvicorn records the signals; we act on them.
"""
from __future__ import annotations

import asyncio
import atexit
import logging
import sys
from pathlib import Path

import uvicorn

from .config.model import Config
from .errors import StartError
from .gateway.app import create_app
from .gateway.auth import load_keys
from .gateway.pool import ModelPool
from .net import port_in_use
from .paths import cache_dir
from .plan import Binaries, plan_for_here
from .supervise.runner import ModelRunner

log = logging.getLogger("launcher")


def prepare_binaries(config: Config, quiet: bool = False) -> Binaries:
    """Build llama.cpp if the plan needs launcher's own build and it is not cached yet."""
    from .binaries import resolve_binaries
    from .build import ensure_build, request_for
    own_build_needed = any(not s.engine.binary or s.parallel.mode == "rpc" or s.engine.kind == "llama-cpp-python"
                           for s in config.models)
    if not own_build_needed:
        return resolve_binaries(config, bin_dir=Path(config.models[0].engine.binary).parent)
    tree, _ = ensure_build(request_for(config), quiet=quiet)
    binaries = resolve_binaries(config, bin_dir=tree.bin_dir)
    if any(s.engine.kind == "llama-cpp-python" for s in config.models):
        from dataclasses import replace

        from .build.bindings import check_bindings
        binaries = replace(binaries, bindings_env=tuple(check_bindings(tree).items()))
    return binaries


def ensure_models(config: Config) -> None:
    from .models.embedded import ensure
    for spec in config.models:
        if spec.is_embedded:
            ensure(spec.embedded_name)


def build_manager(config: Config, binaries: Binaries, log_dir: Path, echo: bool, runner_hooks=lambda r: None):
    """The /api/v1 service: new models are validated like config files and planned like them."""
    from dataclasses import replace

    from .config import validate_source
    from .config.source import Source
    from .devices import lookup
    from .gateway.manager import ModelManager
    from .net import free_ports
    from .plan import Host, make_plan

    def spec_for(path: str, settings: dict):
        doc = {"model": path, **settings}
        return validate_source(Source("<switch request>", doc)).config.models[0]

    def plan_for(spec):
        one = replace(config, models=(spec,))
        return make_plan(one, lookup(), binaries, free_ports(), Host.here(str(cache_dir() / "run" / "api"))).models[0]

    def runner_for(plan, spec):
        runner = ModelRunner(plan, spec, log_dir, echo=echo)
        runner_hooks(runner)
        return runner

    return ModelManager(config.models_dir, spec_for, plan_for, runner_for, binaries.llama_bench)


def serve(config: Config, *, binaries: Binaries | None = None, echo: bool = True, plan_models=None) -> int:
    """Serve until stopped. `plan_models` replaces the planned models (used under a user's mpirun)."""
    logging.basicConfig(level=logging.INFO, format="[launcher] %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per health poll is noise
    gw = config.gateway
    if port_in_use(gw.host, gw.port):  # before anything starts
        raise StartError(f"port {gw.port} on {gw.host} is already in use: stop what runs there or set `port:`")
    keys = load_keys(gw)
    ensure_models(config)
    binaries = binaries or prepare_binaries(config)
    models = plan_models or plan_for_here(config, binaries=binaries).models
    log_dir = Path(gw.log_dir) if gw.log_dir else cache_dir() / "logs" / Path(config.file).stem
    runners = [ModelRunner(mp, spec, log_dir, echo=echo) for mp, spec in zip(models, config.models)]
    atexit.register(lambda: [r.kill_now() for r in runners])
    outcome = {"code": 0}
    server: uvicorn.Server | None = None

    pool = ModelPool(runners, gw.max_loaded, gw.load_timeout)

    async def start_all() -> None:
        try:
            preload = pool.preload_list()
            await asyncio.gather(*(r.start() for r in preload))
            for r in preload:
                pool.touch(r)
            names = ", ".join(r.name for r in preload) or "nothing preloaded"
            log.info("ready: %s on http://%s:%d/v1 (logs in %s)", names, gw.host, gw.port, log_dir)
        except StartError as exc:
            log.error("%s", exc)
            outcome["code"] = 1
            if server:
                server.should_exit = True

    background: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

    async def on_start() -> None:
        task = asyncio.get_running_loop().create_task(start_all())
        background.add(task)
        task.add_done_callback(background.discard)

    async def on_stop() -> None:
        grace = 0.0 if server and server.force_exit else 10.0
        await asyncio.gather(*(r.stop(grace) for r in runners), return_exceptions=True)

    def failed_for_good(name: str) -> None:
        spec = next(r.spec for r in runners if r.name == name)
        if spec.engine.exit_on_failure and server:
            log.error("model %s failed and engine.exit_on_failure is set: stopping", name)
            outcome["code"] = 1
            server.should_exit = True

    for r in runners:
        r.on_failed = failed_for_good
    manager = build_manager(config, binaries, log_dir, echo, runner_hooks=lambda r: setattr(r, "on_failed",
                                                                                       failed_for_good))
    app = create_app(runners, gw, keys, on_start, on_stop, pool=pool, manager=manager)
    uv = uvicorn.Config(app, host=gw.host, port=gw.port, log_level="warning", access_log=False,
                        timeout_graceful_shutdown=30, lifespan="on")
    server = uvicorn.Server(uv)
    try:
        server.run()
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the Ctrl-C it recorded; the engines were stopped by then
    return outcome["code"]
