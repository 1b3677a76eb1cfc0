"""llama.cpp inside a Python process: load a GGUF and generate, over llama-cpp-python on launcher's build.

    engine = LlamaCppEngine(model_path="/models/model.gguf")     # or LlamaCppEngine(LlamaCppConfig(...))
    engine.load()
    text = engine.generate("Once upon a time", max_new_tokens=32)
    for piece in engine.generate_stream("Once upon a time"):
        print(piece, end="")

The settings and their defaults are those of the anyserve llama.cpp worker document; `max_new_tokens`
is accepted for `max_tokens` as in the llama.cpp integration guide. No second compile: the bindings
load the libllama of launcher's cached build (the newest one built from their own version).
"""
from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..engines.llama_cpp_python import LlamaCppConfig
from ..errors import BuildError, LauncherError
from ..toolchain import all_builds
from .llama_cpp_python import LIB_ENV, check_bindings, installed_version


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str          # "stop" or "length"
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Chunk:
    text: str
    finish_reason: str | None   # set on the last chunk


GENERATION_KEYS = ("max_tokens", "temperature", "top_p", "top_k", "repeat_penalty", "stop")


def bindings_lib_dir() -> Path:
    """The bin/ of the newest cached build the installed bindings can load."""
    version = installed_version()
    for tree in all_builds():
        try:
            return Path(check_bindings(tree, version)[LIB_ENV])
        except BuildError:
            continue
    raise BuildError(f"no cached llama.cpp build matches llama-cpp-python {version}: run `launch build` "
                     "(the default source is the one the bindings were released with)")


def import_llama_cpp(lib_dir: Path | None = None):
    """Import llama_cpp bound to launcher's libllama (the variable is read once, at import)."""
    if "llama_cpp" not in sys.modules:
        os.environ[LIB_ENV] = str(lib_dir or os.environ.get(LIB_ENV) or bindings_lib_dir())
    import llama_cpp  # only now: it reads LLAMA_CPP_LIB_PATH when first imported
    return llama_cpp


class LlamaCppEngine:
    """One loaded model. Calls are serialised: a llama.cpp context serves one sequence at a time."""

    def __init__(self, config: LlamaCppConfig | None = None, *, lib_dir: str | Path | None = None, **settings: Any):
        self.config = config or LlamaCppConfig()
        for key, value in settings.items():
            if not hasattr(self.config, key):
                raise TypeError(f"LlamaCppEngine got an unknown setting {key!r}")
            setattr(self.config, key, value)
        self.lib_dir = Path(lib_dir) if lib_dir else None
        self._model = None
        self._lock = threading.Lock()

    def load(self) -> None:
        if not self.config.model_path or not Path(self.config.model_path).is_file():
            raise LauncherError(f"model file not found: {self.config.model_path!r}")
        llama_cpp = import_llama_cpp(self.lib_dir)
        c = self.config
        self._model = llama_cpp.Llama(model_path=c.model_path, n_ctx=c.n_ctx, n_gpu_layers=c.n_gpu_layers,
                                      n_batch=c.n_batch, n_threads=c.n_threads, verbose=False)

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def model(self):
        if self._model is None:
            raise LauncherError("model not loaded: call load() first")
        return self._model

    def _sampling(self, params: dict) -> dict:
        """The call's sampling settings: given ones, else the config's defaults."""
        if "max_new_tokens" in params:
            params["max_tokens"] = params.pop("max_new_tokens")
        unknown = set(params) - set(GENERATION_KEYS)
        if unknown:
            raise TypeError(f"unknown generation parameter(s): {', '.join(sorted(unknown))}")
        out = {k: params[k] if params.get(k) is not None else getattr(self.config, k) for k in GENERATION_KEYS}
        out["stop"] = list(out["stop"]) or None
        return out

    def complete(self, prompt: str, **params: Any) -> Completion:
        with self._lock:
            result = self.model(prompt, echo=False, **self._sampling(params))
        usage = result.get("usage") or {}
        choice = result["choices"][0]
        return Completion(choice["text"], choice.get("finish_reason") or "stop", usage.get("prompt_tokens", 0),
                          usage.get("completion_tokens", 0))

    def stream(self, prompt: str, **params: Any) -> Iterator[Chunk]:
        with self._lock:
            for part in self.model(prompt, echo=False, stream=True, **self._sampling(params)):
                choice = part["choices"][0]
                yield Chunk(choice["text"], choice.get("finish_reason"))

    def generate(self, prompt: str, **params: Any) -> str:
        return self.complete(prompt, **params).text

    def generate_stream(self, prompt: str, **params: Any) -> Iterator[str]:
        for chunk in self.stream(prompt, **params):
            if chunk.text:
                yield chunk.text
