"""Model names -> runners. A request's `model` may be the alias, the file name or its stem."""
from __future__ import annotations

from ..supervise.runner import ModelRunner
from .errors import BadRequest, ModelNotFound


class Registry:
    def __init__(self, runners: list[ModelRunner]):
        self.runners = runners
        self._by_name: dict[str, ModelRunner] = {}
        for r in runners:
            for name in r.plan.aliases:
                self._by_name.setdefault(name, r)

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
