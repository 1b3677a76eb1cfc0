"""Model management behind `/api/v1`: list GGUF files, switch and stop models, status, llama-bench tasks.

Paths from requests are resolved (symlinks included) and must stay inside `models_dir`.
Settings given with a switch are validated by the same schema as config files.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..bench.llama_bench import BenchCommand, BenchParams, bench_command, run_llama_bench, summarize
from ..config.model import ModelSpec
from ..devices import VISIBLE_ENV
from ..errors import BadRequest, ConfigError, Conflict, LauncherError, NotFound
from ..models.catalog import list_gguf
from ..models.embedded import model_file
from ..plan.model import ModelPlan
from ..supervise.deployment import Deployment
from ..supervise.runner import ModelRunner
from ..supervise.states import ProcessState
from .pool import ModelPool

log = logging.getLogger("launcher.manager")


@dataclass
class BenchTask:
    id: str
    model: str
    device_key: str
    command: BenchCommand
    state: str = "queued"            # queued | running | done | failed
    results: list = field(default_factory=list)
    raw: list = field(default_factory=list)
    output: str = ""                 # llama-bench's own output, in the format asked for
    error: str | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None

    def view(self) -> dict:
        return {"task_id": self.id, "state": self.state, "model": self.model, "device": self.device_key,
                "command": list(self.command.argv), "output_format": self.command.output, "output": self.output,
                "results": self.results, "raw": self.raw, "error": self.error, "created": self.created,
                "finished": self.finished}


class ModelManager:
    """`spec_for(path, settings)` validates a request's settings like a config file; `plan_for(spec)`
    plans the model like the configured ones."""

    def __init__(self, deployment: Deployment, pool: ModelPool, models_dir: str | None,
                 spec_for: Callable[[str, dict], ModelSpec], plan_for: Callable[[ModelSpec], ModelPlan],
                 bench_binary: str):
        self.deployment, self.pool = deployment, pool
        self.models_dir = Path(models_dir).resolve() if models_dir else None
        self.spec_for, self.plan_for = spec_for, plan_for
        self.bench_binary = bench_binary
        self.tasks: dict[str, BenchTask] = {}
        self._bench_busy: set[str] = set()
        self._running: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

    # --- files -------------------------------------------------------------------------
    def resolve(self, model_path: str) -> Path:
        """A requested path, which must name a .gguf file inside models_dir (after symlinks)."""
        if self.models_dir is None:
            raise BadRequest("no models_dir is configured: set `models_dir:` in the config", param="model_path")
        if not isinstance(model_path, str) or not model_path:
            raise BadRequest("model_path must be a non-empty string", param="model_path")
        candidate = Path(model_path)
        candidate = candidate if candidate.is_absolute() else self.models_dir / candidate
        real = candidate.resolve()
        if not real.is_relative_to(self.models_dir):
            raise BadRequest(f"model_path {model_path!r} is outside models_dir", param="model_path")
        if real.suffix != ".gguf" or not real.is_file():
            raise BadRequest(f"model_path {model_path!r} is not a GGUF file in models_dir", param="model_path")
        return real

    def list_files(self) -> list[dict]:
        if self.models_dir is None:
            raise BadRequest("no models_dir is configured: set `models_dir:` in the config")
        return list_gguf(self.models_dir)

    # --- switch / stop / status -------------------------------------------------------------
    async def switch(self, model_path: str, settings: dict) -> ModelRunner:
        path = self.resolve(model_path)
        if not isinstance(settings, dict):
            raise BadRequest("config must be an object of engine settings", param="config")
        try:
            spec = self.spec_for(str(path), settings)
        except ConfigError as exc:
            raise BadRequest("invalid config: " + "; ".join(f"{p.dotted}: {p.message}" for p in exc.problems
                                                            if not p.warning), param="config") from exc
        old = self.deployment.find(spec.name)
        if old is not None:
            await self.deployment.remove(old)
        runner = self.deployment.add(self.plan_for(spec), spec)
        await self.pool.ensure_loaded(runner)
        return runner

    async def stop(self, name: str | None) -> ModelRunner:
        if name is None:
            loaded = [r for r in self.deployment.models if r.state.loaded]
            if len(loaded) != 1:
                raise BadRequest("model_name is required when not exactly one model is loaded", param="model_name")
            runner = loaded[0]
        else:
            runner = self.deployment.resolve(name)
        await runner.stop()
        return runner

    def status(self, runner: ModelRunner) -> dict:
        procs = [u.process for u in runner.upstreams]
        running = runner.state.loaded
        main = procs[0] if procs else None
        return {"running": running, "model_name": runner.name, "model_path": model_file(runner.spec),
                "state": runner.state,
                "port": main.spec.port if main else None, "start_time": runner.started_at,
                "process_id": main.pid if main and running else None,
                "processes": [{"name": p.spec.name, "pid": p.pid if _alive(p) else None, "state": p.state,
                               "memory_mib": _rss_mib(p.pid) if _alive(p) else 0} for p in procs],
                "memory_mib": round(sum(_rss_mib(p.pid) for p in procs if _alive(p)), 1),
                "restarts": runner.restarts, "last_error": runner.last_error or None,
                "idle_seconds": round(time.monotonic() - self.pool.last_used[runner.name], 1)
                if runner.name in self.pool.last_used else None}

    # --- llama-bench ----------------------------------------------------------------------------
    def start_benchmark(self, body: dict) -> BenchTask:
        body = dict(body)
        if "model_path" in body:
            model = str(self.resolve(body.pop("model_path")))
            spec = None
        else:
            spec = self.deployment.resolve(body.pop("model_name", None)).spec
            model = model_file(spec)
        try:
            params = BenchParams.from_dict(body)
        except LauncherError as exc:
            raise BadRequest(f"invalid benchmark parameters: {exc}") from exc
        device_key, env = _device_of(spec)
        if device_key in self._bench_busy:
            raise Conflict(f"a benchmark is already running on {device_key}; one at a time per device")
        task = BenchTask(uuid.uuid4().hex[:12], Path(model).name, device_key,
                         bench_command(self.bench_binary, model, params))
        self.tasks[task.id] = task
        self._bench_busy.add(device_key)
        running = asyncio.get_running_loop().create_task(self._run(task, env))
        self._running.add(running)
        running.add_done_callback(self._running.discard)
        return task

    async def _run(self, task: BenchTask, env: dict[str, str]) -> None:
        task.state = "running"
        try:
            run = await run_llama_bench(task.command, {**os.environ, **env})
            task.raw, task.output, task.results = run.rows, run.output, summarize(run.rows)
            task.state = "done"
        except LauncherError as exc:  # llama-bench failed: reported in the task
            task.state, task.error = "failed", str(exc)
        except Exception as exc:  # a bug: reported in the task and logged with its traceback
            log.exception("benchmark task %s failed", task.id)
            task.state, task.error = "failed", f"internal error: {exc}"
        finally:
            task.finished = time.time()
            self._bench_busy.discard(task.device_key)

    def task(self, task_id: str) -> BenchTask:
        if task_id not in self.tasks:
            raise NotFound(f"no benchmark task {task_id!r}", param="task_id")
        return self.tasks[task_id]


def _device_of(spec: ModelSpec | None) -> tuple[str, dict[str, str]]:
    if spec is None or spec.devices.backend == "cpu" or not spec.devices.ids:
        return "cpu", {}
    ids = ",".join(map(str, spec.devices.ids))
    return f"{spec.devices.backend}:{ids}", {VISIBLE_ENV[spec.devices.backend]: ids}


def _alive(process) -> bool:
    return process.pid is not None and process.state not in (ProcessState.STOPPED, ProcessState.FAILED)


def _rss_mib(pid: int | None) -> float:
    if not pid:
        return 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
