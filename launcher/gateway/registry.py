"""Model names -> runners. A request's `model` may be the alias, the file name or its stem."""
from __future__ import annotations

from ..supervise.runner import ModelRunner
from .errors import BadRequest, ModelNotFound


class Registry:
    def __init__(self, runners: list[ModelRunner]):
        self.runners = runners  # shared with the pool: models added at runtime are seen by both
        self._by_name: dict[str, ModelRunner] = {}
        for r in runners:
            self._index(r)

    def _index(self, runner: ModelRunner) -> None:
        for name in runner.plan.aliases:
            self._by_name.setdefault(name, runner)

    def find(self, name: str) -> ModelRunner | None:
        return self._by_name.get(name)

    on_add = staticmethod(lambda runner: None)  # the app hooks metrics onto models added at runtime

    def add(self, runner: ModelRunner) -> None:
        self.on_add(runner)
        self.runners.append(runner)
        self._index(runner)

    def remove(self, runner: ModelRunner) -> None:
        self.runners.remove(runner)
        self._by_name = {k: v for k, v in self._by_name.items() if v is not runner}

    def resolve(self, name) -> ModelRunner:
        if name is None:
            if len(self.runners) == 1:  # one model: a request without `model` can only mean it
                return self.runners[0]
            raise BadRequest("`model` is required when several models are served", param="model")
        if not isinstance(name, str):
            raise BadRequest("`model` must be a string", param="model")
        runner = self._by_name.get(name)
        if runner is None:
            known = ", ".join(sorted(r.name for r in self.runners))
            raise ModelNotFound(f"model {name!r} does not exist; served models: {known}", param="model")
        return runner
