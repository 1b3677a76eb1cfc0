"""Engine kinds: one class per kind of engine process, behind one base (base.py). Adding a kind is one new
file and one `register` call; the rest of launcher asks `engine_for(spec)` and never compares kind names.

    llama_server.py      upstream llama-server; the Ascend fork's llama-server and llama-mpi-server
    llama_cpp_python.py  llama-cpp-python's server (and the anyserve worker's LlamaCppConfig)
    rpc_server.py        ggml's rpc-server (the ranks of an rpc job)
    python_worker.py     a Python worker process
    llama_bench.py       llama-bench: the Llama Switch API's benchmark parameters, argv and results
    flags.py, programs.py  config key -> flag (from the schema's x-* annotations); program names
"""
from __future__ import annotations

from ..config.model import ModelSpec
from .base import LOOPBACK, EngineFile, EngineKind, Launch, Programs, Slot
from .llama_cpp_python import LlamaCppPython
from .llama_server import AscendForkServer, AscendMpiServer, LlamaServer
from .python_worker import PythonWorker
from .rpc_server import RpcServer

__all__ = ["EngineKind", "Launch", "Slot", "EngineFile", "Programs", "LOOPBACK", "register", "unregister",
           "engine_for", "kind_names", "kind_named", "LlamaServer", "AscendForkServer", "AscendMpiServer", "LlamaCppPython",
           "RpcServer", "PythonWorker", "RPC_SERVER_KIND", "PYTHON_WORKER_KIND"]

_KINDS: dict[str, type[EngineKind]] = {}


def register(kind: type[EngineKind]) -> type[EngineKind]:
    """Make `engine.kind: <kind.name>` valid in configs and planned with `kind` (usable as a decorator)."""
    if not kind.name:
        raise ValueError(f"{kind.__name__} has no name")
    _KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    _KINDS.pop(name, None)


def kind_names() -> tuple[str, ...]:
    """The values `engine.kind` may take."""
    return tuple(_KINDS)


def kind_named(name: str) -> EngineKind:
    return _KINDS[name]()


def engine_for(spec: ModelSpec) -> EngineKind:
    """The engine that runs this model: its configured kind, or that kind's variant for the flavor and mode."""
    return _KINDS[spec.engine.kind].for_spec(spec)


register(LlamaServer)
register(LlamaCppPython)
RPC_SERVER_KIND = RpcServer()
PYTHON_WORKER_KIND = PythonWorker()
