"""A Python worker process (`python -m launcher.worker MODULE:ATTR`): the anyserve documents' app, served over
KServe v2 on an internal port. The built-in llama.cpp worker loads launcher's build through the bindings."""
from __future__ import annotations

from ..config.model import WorkerSpec
from .base import LOOPBACK, EngineKind, Programs

BUILTIN_LLAMACPP = "launcher.worker.builtins.llamacpp:"


class PythonWorker(EngineKind):
    name = "python-worker"

    def needs_own_build(self, spec: WorkerSpec) -> bool:
        return spec.app.startswith(BUILTIN_LLAMACPP)

    def argv(self, spec: WorkerSpec, port: int, programs: Programs) -> tuple[str, ...]:
        argv = [programs.python, "-m", "launcher.worker", spec.app] + (["--factory"] if spec.factory else [])
        argv += ["--host", LOOPBACK, "--port", str(port), "--name", spec.name, "--threads", str(spec.threads)]
        for folder in spec.path:
            argv += ["--path", folder]
        return tuple(argv)
