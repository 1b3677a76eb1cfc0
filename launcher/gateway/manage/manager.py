"""Model management behind `/api/v1` (the Llama Switch API): list GGUF files, switch and stop models,
status, llama-bench tasks.

Paths are confined by the name a request gives (no `..`, no absolute path outside the folders);
symlinks placed inside a folder are followed, since model stores and Hugging Face caches are symlink
farms. A switched model is validated like a config file and inherits the devices, parallel layout
and engine of the model it replaces, so it runs where that one ran.
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

from ...config.model import ModelSpec
from ...config.switch_names import UnknownSetting, to_settings
from ...devices import VISIBLE_ENV
from ...engines.llama_bench import (
    BenchCommand,
    BenchParams,
    bench_command,
    run_llama_bench,
    summarize,
)
from ...errors import BadRequest, ConfigError, Conflict, LauncherError, NotFound
from ...gguf_info import GGUF_MAGIC, read_magic
from ...models.catalog import list_gguf
from ...models.embedded import model_file
from ...plan.model import JOB_ENV, ModelPlan
from ...supervise.deployment import Deployment
from ...supervise.proctree import descendants, marked_pids, rss_mib
from ...supervise.runner import ModelRunner
from ...supervise.states import ProcessState
from ...telemetry import device_processes
from ..pool import ModelPool
from ..views import target_view

log = logging.getLogger("launcher.manager")

# spec_for(model path, settings, the spec whose devices/parallel/engine it inherits) -> validated spec
SpecFor = Callable[[str, dict, ModelSpec], ModelSpec]


@dataclass
class BenchTask:
    id: str
    model: str
    device_key: str
    command: BenchCommand
    state: str = "queued"            # queued | running | done | failed | cancelled
    results: list = field(default_factory=list)
    raw: list = field(default_factory=list)
    output: str = ""                 # llama-bench's own output, in the format asked for
    error: str | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    job: asyncio.Task | None = field(default=None, repr=False)

    def view(self) -> dict:
        return {"task_id": self.id, "state": self.state, "model": self.model, "device": self.device_key,
                "command": list(self.command.argv), "output_format": self.command.output, "output": self.output,
                "results": self.results, "raw": self.raw, "error": self.error, "created": iso_utc(self.created),
                "finished": iso_utc(self.finished)}


def iso_utc(ts: float | None) -> str | None:
    """ISO 8601 in UTC, as the document writes it (2023-01-01T00:00:00Z)."""
    if ts is None:
        return None
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def devices_key(spec: ModelSpec) -> tuple[str, dict[str, str]]:
    """Which devices a model uses, as a lock key and the env that makes a process see just them."""
    backend = spec.devices.backend
    if backend == "cpu":
        return "cpu", {}
    if spec.devices.ids is None:
        return f"{backend}:all", {}
    ids = ",".join(map(str, spec.devices.ids))
    return f"{backend}:{ids}", {VISIBLE_ENV[backend]: ids}


class ModelManager:
    def __init__(self, deployment: Deployment, pool: ModelPool, folders: Sequence[str], spec_for: SpecFor,
                 plan_for: Callable[[ModelSpec], ModelPlan], bench_binary: str, gateway_url: str = ""):
        self.deployment, self.pool = deployment, pool
        self.folders = tuple(Path(os.path.abspath(f)) for f in folders)
        self.spec_for, self.plan_for = spec_for, plan_for
        self.bench_binary, self.gateway_url = bench_binary, gateway_url
        self.configured = deployment.models[0].spec if deployment.models else None
        self.tasks: dict[str, BenchTask] = {}
        self._bench_busy: set[str] = set()
        self._running: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

    # --- files -------------------------------------------------------------------------
    def resolve(self, model_path) -> Path:
        """The GGUF file a request names, inside one of the folders by its name (symlinks followed)."""
        if not self.folders:
            raise BadRequest("no models_dir is configured: set `models_dir:` in the config", param="model_path")
        if not isinstance(model_path, str) or not model_path:
            raise BadRequest("model_path must be a non-empty string", param="model_path")
        name = PurePosixPath(model_path)
        if ".." in name.parts:
            raise BadRequest(f"model_path {model_path!r} must not contain '..'", param="model_path")
        if name.suffix != ".gguf":
            raise BadRequest(f"model_path {model_path!r} does not name a .gguf file", param="model_path")
        if name.is_absolute():
            candidates = [Path(model_path)] if any(Path(model_path).is_relative_to(f) for f in self.folders) else []
            if not candidates:
                raise BadRequest(f"model_path {model_path!r} is outside the models folder(s) "
                                 f"{', '.join(map(str, self.folders))}", param="model_path")
        else:
            candidates = [f / name for f in self.folders]
        for candidate in candidates:
            if candidate.is_file():
                if read_magic(candidate) != GGUF_MAGIC:
                    raise BadRequest(f"model_path {model_path!r} is not a GGUF file", param="model_path")
                return candidate
        raise NotFound(f"model_path {model_path!r} is not a file in {', '.join(map(str, self.folders))}",
                       param="model_path")

    def list_files(self) -> list[dict]:
        if not self.folders:
            raise BadRequest("no models_dir is configured: set `models_dir:` in the config")
        return [entry for folder in self.folders for entry in list_gguf(folder)]

    # --- switch / stop / status -------------------------------------------------------------
    def switch(self, model_path, config) -> tuple[ModelRunner, dict]:
        """Validate now (400s come back at once), then replace the running model in the background.
        Returns the new model and the host/port the caller gave (they do not apply here)."""
        path = self.resolve(model_path)
        if not isinstance(config, dict):
            raise BadRequest("config must be an object of model settings", param="config")
        try:
            settings, gateway_only = to_settings(config)
        except UnknownSetting as exc:
            raise BadRequest(str(exc), param=f"config.{exc.key}") from exc
        running = [r for r in self.deployment.models if r.state.loaded]
        template = max(running, key=lambda r: self.pool.last_used.get(r.name, 0.0)).spec if running \
            else self.configured
        try:
            spec = self.spec_for(str(path), settings, template)
        except ConfigError as exc:
            raise BadRequest("invalid config: " + "; ".join(f"{p.dotted}: {p.message}" for p in exc.problems
                                                            if not p.warning), param="config") from exc
        old = self.deployment.find(spec.name)
        if old is not None:
            self.deployment.detach(old)
        runner = self.deployment.add(self.plan_for(spec), spec)
        runner.mark_starting()
        self._background(self._switch(runner, old))
        return runner, gateway_only

    async def _switch(self, runner: ModelRunner, old: ModelRunner | None) -> None:
        if old is not None:
            await old.stop()
        try:
            await self.pool.switch_to(runner)
        except LauncherError as exc:  # the load failed or could not make room: status shows it
            runner.last_error = str(exc)
            log.error("switch to %s failed: %s", runner.name, exc)

    async def stop(self, name: str | None) -> ModelRunner:
        if name is None:
            loaded = [r for r in self.deployment.models if r.state.loaded]
            if not loaded:
                raise Conflict("no model is running")
            if len(loaded) > 1:
                raise BadRequest("several models are running (" + ", ".join(r.name for r in loaded) +
                                 "): say which with model_name", param="model_name")
            runner = loaded[0]
        else:
            runner = self.deployment.resolve(name)
        runner.held = True  # stays stopped: on-demand loading does not bring it back
        await runner.stop()
        return runner

    def load(self, name) -> ModelRunner:
        """Start a configured model that is stopped (held by stop, unloaded, or failed), in the background;
        launcher's addition to the Llama Switch API, for models that have no file in models_dir to switch to."""
        if not isinstance(name, str) or not name:
            raise BadRequest("model_name must be a non-empty string", param="model_name")
        runner = self.deployment.resolve(name)
        runner.held = False
        if not runner.state.serving:
            runner.mark_starting()
            self._background(self._quietly(self.pool.ensure_loaded(runner)))
        return runner

    @staticmethod
    async def _quietly(load) -> None:
        try:
            await load
        except Exception as exc:  # the model's state and last_error tell the caller; log it once here
            log.warning("loading failed: %s", exc)

    async def status(self, runner: ModelRunner) -> dict:
        procs = [u.process for u in runner.upstreams]
        live = [p for p in procs if _alive(p)]
        # The document's `running` means a process exists: a model still starting (no process yet) or already
        # stopped is not running, so start_time and process_id are set exactly when it is (state says more).
        running = bool(live)
        main = live[0] if live else (procs[0] if procs else None)
        rss = round(sum(rss_mib(p.pid) for p in live), 1)
        return {"running": running, "model_name": runner.name, "model_path": model_file(runner.spec),
                "port": main.spec.port if main else None,
                "start_time": iso_utc(main.started_at or runner.started_at) if running else None,
                "process_id": main.pid if main and running else None,
                "vram_usage": await self._device_mib(runner, live) if running else None,
                # launcher's additions
                "state": runner.state, "held": runner.held, "host_rss_mib": rss, "devices": devices_key(runner.spec)[0],
                "device_bytes": self.pool.room.of(runner.name),   # where the placement put it, from its memory plan
                "endpoint": f"{self.gateway_url}/v1" if self.gateway_url else None,
                "processes": [e.as_json() | {"host_rss_mib": round(rss_mib(e.pid), 1) if e.pid else 0}
                              for e in target_view(runner).engines],
                "restarts": runner.restarts, "last_error": runner.last_error or None,
                "idle_seconds": round(time.monotonic() - self.pool.last_used[runner.name], 1)
                if runner.name in self.pool.last_used else None}

    @staticmethod
    async def _device_mib(runner: ModelRunner, live) -> int | None:
        """Device memory of the model's processes (the job's ranks too), from npu-smi / nvidia-smi."""
        if runner.spec.devices.backend == "cpu":
            return None
        table = await asyncio.to_thread(device_processes, runner.spec.devices.backend)
        if table is None:
            return None
        pids = set()
        for p in live:
            pids |= {p.pid} | descendants(p.pid)
            marker = p.spec.env_dict.get(JOB_ENV)
            if marker:
                pids |= set(marked_pids(marker))
        return sum(row.memory_mib for row in table if row.pid in pids)

    # --- llama-bench ----------------------------------------------------------------------------
    def start_benchmark(self, body: dict) -> BenchTask:
        """The document's {model_path, config}, or launcher's flat form {model_path | model_name, ...}."""
        body = dict(body)
        if "config" in body:
            params_raw = body.pop("config")
            if not isinstance(params_raw, dict):
                raise BadRequest("config must be an object of benchmark parameters", param="config")
            extra = set(body) - {"model_path", "model_name"}
            if extra:
                raise BadRequest(f"unknown key(s) beside config: {', '.join(sorted(extra))}")
        else:
            params_raw = {k: v for k, v in body.items() if k not in ("model_path", "model_name")}
        if "model_path" in body:
            model = str(self.resolve(body["model_path"]))
            spec = self.configured  # a file of the models folder runs where the deployment's models run
        else:
            spec = self.deployment.resolve(body.get("model_name")).spec
            model = model_file(spec)
        try:
            params = BenchParams.from_dict(params_raw)
        except LauncherError as exc:
            raise BadRequest(f"invalid benchmark parameters: {exc}", param="config") from exc
        device_key, env = devices_key(spec) if spec else ("cpu", {})
        if device_key in self._bench_busy:
            raise Conflict(f"a benchmark is already running on {device_key}; one at a time per device")
        task = BenchTask(uuid.uuid4().hex[:12], Path(model).name, device_key,
                         bench_command(self.bench_binary, model, params))
        self.tasks[task.id] = task
        self._bench_busy.add(device_key)
        task.job = self._background(self._run(task, env))
        return task

    async def _run(self, task: BenchTask, env: dict[str, str]) -> None:
        task.state = "running"
        try:
            run = await run_llama_bench(task.command, {**os.environ, **env})
            task.raw, task.output, task.results = run.rows, run.output, summarize(run.rows)
            task.state = "done"
        except asyncio.CancelledError:
            task.state = "cancelled"
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

    async def cancel(self, task_id: str) -> BenchTask:
        task = self.task(task_id)
        if task.job and not task.job.done():
            task.job.cancel()
            await asyncio.wait({task.job})
        return task

    def _background(self, coro) -> asyncio.Task:
        job = asyncio.get_running_loop().create_task(coro)
        self._running.add(job)
        job.add_done_callback(self._running.discard)
        return job

    async def close(self) -> None:
        """Shutting down: end running benchmarks (their llama-bench processes) and switches."""
        for job in list(self._running):
            job.cancel()
        if self._running:
            await asyncio.wait(set(self._running))


def _alive(process) -> bool:
    return process.pid is not None and process.state not in (ProcessState.STOPPED, ProcessState.FAILED)
