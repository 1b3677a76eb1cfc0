"""ggml's RPC server (`ggml-rpc-server`): the device of one rank of an rpc job, which rank 0's llama-server
reaches with `--rpc host:port,...`. Unauthenticated: private networks only."""
from __future__ import annotations

from ..config.model import ModelSpec
from .base import EngineKind, Programs
from .programs import RPC_SERVER


class RpcServer(EngineKind):
    name = "rpc-server"
    programs = (RPC_SERVER,)
    health_path = ""  # no HTTP: rank 0's readiness covers the job
    own_build = True  # the build's own, whatever LLAMA_SERVER_PATH says

    def argv(self, spec: ModelSpec, bind: str, port: int, programs: Programs) -> tuple[str, ...]:
        argv = [programs.tool(RPC_SERVER), "--host", bind, "--port", str(port)]
        if spec.devices.backend == "cpu" and spec.params.n_threads:
            argv += ["--threads", str(spec.params.n_threads)]
        return tuple(argv)
