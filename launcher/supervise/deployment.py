"""The deployment: every served model and Python worker, owned in one place.

It creates and removes model runners, resolves the names requests use, and emits what happens
to models on one EventBus that the gateway, metrics and shutdown subscribe to.
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from ..config.model import ModelSpec, WorkerSpec
from ..errors import BadRequest, ModelNotFound
from ..plan.model import ModelPlan
from .events import Event, EventBus, EventKind
from .logs import LogHub
from .process import ProcessFactory
from .runner import ModelRunner


class Deployment:
    def __init__(self, processes: ProcessFactory, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self.events = EventBus()
        self.logs = LogHub()
        self._processes, self._sleep = processes, sleep
        self._runners: list[ModelRunner] = []
        self._workers: list[ModelRunner] = []
        self._by_name: dict[str, ModelRunner] = {}

    @property
    def models(self) -> tuple[ModelRunner, ...]:
        return tuple(self._runners)

    @property
    def workers(self) -> tuple[ModelRunner, ...]:
        """Python worker groups: routed by capability only, never by a request's `model` name."""
        return tuple(self._workers)

    @property
    def everything(self) -> tuple[ModelRunner, ...]:
        return tuple(self._runners) + tuple(self._workers)

    def add_worker(self, plan: ModelPlan, spec: WorkerSpec) -> ModelRunner:
        runner = ModelRunner(plan, spec, self._processes, self.events.emit, self._sleep, self.logs.push)
        self._workers.append(runner)
        self.events.emit(Event(EventKind.ADDED, runner.name, runner.state))
        return runner

    def add(self, plan: ModelPlan, spec: ModelSpec) -> ModelRunner:
        runner = ModelRunner(plan, spec, self._processes, self.events.emit, self._sleep, self.logs.push)
        self._runners.append(runner)
        for name in plan.aliases:
            self._by_name.setdefault(name.casefold(), runner)
        self.events.emit(Event(EventKind.ADDED, runner.name, runner.state))
        return runner

    async def remove(self, runner: ModelRunner) -> None:
        await runner.stop()
        self.detach(runner)

    def detach(self, runner: ModelRunner) -> None:
        """Take a model out of the deployment (the caller stops it)."""
        self._runners.remove(runner)
        self._by_name = {k: v for k, v in self._by_name.items() if v is not runner}
        self.events.emit(Event(EventKind.REMOVED, runner.name, runner.state))

    def reindex(self) -> None:
        """The names requests use, again from every model's plan (a reload changed a model's aliases)."""
        self._by_name = {}
        for runner in self._runners:
            for name in runner.plan.aliases:
                self._by_name.setdefault(name.casefold(), runner)

    def find(self, name: str) -> ModelRunner | None:
        """By alias, file name or stem, case-insensitively (`DeepSeek-V2-Lite` finds `deepseek-v2-lite`)."""
        return self._by_name.get(name.casefold())

    def resolve(self, name) -> ModelRunner:
        """The model a request names: alias, file name or stem. Never falls back to another model."""
        if name is None:
            if len(self._runners) == 1:  # one model: a request without `model` can only mean it
                return self._runners[0]
            raise BadRequest("`model` is required when several models are served", param="model")
        if not isinstance(name, str):
            raise BadRequest("`model` must be a string", param="model")
        runner = self.find(name)
        if runner is None:
            known = ", ".join(sorted(r.name for r in self._runners))
            raise ModelNotFound(f"model {name!r} does not exist; served models: {known}", param="model")
        return runner

    async def stop_all(self, grace: float = 10.0) -> None:
        await asyncio.gather(*(r.stop(grace) for r in self.everything), return_exceptions=True)

    def kill_now(self) -> None:
        for r in self.everything:
            r.kill_now()
