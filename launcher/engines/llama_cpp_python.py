"""llama-cpp-python's own server (`python -m llama_cpp.server`) over launcher's build (LLAMA_CPP_LIB_PATH),
and the settings of the anyserve document's built-in llama.cpp worker, which runs the same bindings."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from ..config.inherit import ModelView
from ..config.model import ModelSpec
from ..config.problems import Problem
from ..errors import LauncherError
from .base import LOOPBACK, EngineKind, Launch, Programs, Slot
from .flags import python_server_flags

N_CTX = 2048  # llama-cpp-python's server default, and the anyserve document's


class LlamaCppPython(EngineKind):
    name = "llama-cpp-python"
    # Its server has no /health; it binds only after loading, so /v1/models will do.
    health_path = "/v1/models"
    own_build = True
    bindings = True

    def launch(self, spec: ModelSpec, slot: Slot, programs: Programs) -> Launch:
        flags, notes = python_server_flags(spec.params, slot.threads)
        argv = [programs.python, "-m", "llama_cpp.server", "--model", slot.model_path, "--model_alias", spec.name,
                "--host", LOOPBACK, "--port", str(slot.port),
                # concurrent callers queue instead of cancelling each other
                "--interrupt_requests", "False"] + flags
        return Launch(tuple(argv) + spec.engine.extra_args, env=programs.bindings_env, notes=tuple(notes))

    def memory_defaults(self, spec: ModelSpec, context_length: int) -> dict:
        p = spec.params  # its server's defaults: 2048 tokens, one sequence, no flash attention
        return dict(n_ctx=p.n_ctx or N_CTX, n_seq=1, n_batch=p.n_batch or 512, n_ubatch=p.n_ubatch or 512,
                    flash_attn=p.flash_attn == "on")

    def document_problems(self, view: ModelView, flavor: str, mode: str) -> list[Problem]:
        out = []
        if view.data.get("swa_full") is False:
            out.append(view.problem(("swa_full",), f"engine kind {self.name} always uses a full-size SWA cache",
                                    value=False, hint="remove swa_full or use kind llama-server"))
        if flavor != "upstream" or mode not in ("single", "replicas"):
            out.append(view.problem(("engine", "kind"), f"engine kind {self.name} runs only upstream builds in "
                                    "single or replicas mode", value=self.name, hint="use kind llama-server"))
        return out


@dataclass
class LlamaCppConfig:
    """The built-in llama.cpp worker's settings (anyserve's `model.yaml`)."""
    model_path: str = ""
    name: str = "default"
    n_ctx: int = N_CTX
    n_gpu_layers: int = -1
    n_batch: int = 512
    n_threads: int | None = None
    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    repeat_penalty: float = 1.1
    stop: list[str] = field(default_factory=list)
    port: int = 8000

    @classmethod
    def from_yaml(cls, path: str | Path) -> "LlamaCppConfig":
        data = yaml.safe_load(Path(path).read_text()) or {}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise LauncherError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)

    def validate(self) -> None:
        """The anyserve document's checks, with its exceptions and messages (its tests match them)."""
        if not self.model_path:
            raise ValueError("model_path is required")
        if self.n_ctx < 1:
            raise ValueError(f"n_ctx must be positive, got {self.n_ctx}")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port must be between 1 and 65535, got {self.port}")
        # the file last: the document's own port test names a file that need not exist
        if not Path(self.model_path).exists():
            raise FileNotFoundError(f"Model file not found: {self.model_path}")
