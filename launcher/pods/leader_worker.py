"""A LeaderWorkerSet group running llama.cpp RPC: every pod runs `launch --config`; the workers (index >= 1)
become ggml's rpc-server on every address of the pod, the leader waits until each worker listens and then
serves the model with llama-server `--rpc worker1:port,...` behind the gateway.

Workers are found by LeaderWorkerSet's names: the leader is `<set>-<group>.<service>...` (LWS_LEADER_ADDRESS),
worker i is `<set>-<group>-<i>.<service>...`. A worker that restarts makes LeaderWorkerSet recreate the
group (the exported RecreateGroupOnPodRestart), so the leader never serves with a lost device."""
from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import replace

from ..config.model import Config, ModelSpec
from ..engines.rpc_server import RpcServer
from ..errors import LauncherError
from ..prepare import ensure_models, prepare_binaries
from ..serve import serve
from .roles import PodRole

ALL_ADDRESSES = "0.0.0.0"


def worker_addresses(leader: str, size: int) -> list[str]:
    first, dot, rest = leader.partition(".")
    return [f"{first}-{i}{dot}{rest}" for i in range(1, size)]


def _log(text: str) -> None:
    print(f"[leaderworkerset] {text}", file=sys.stderr, flush=True)


def wait_listening(host: str, port: int, deadline: float) -> str:
    """The worker's address once it accepts connections on `port` (its name may not resolve yet at first)."""
    last = ""
    while time.monotonic() < deadline:
        try:
            address = socket.gethostbyname(host)
            with socket.create_connection((address, port), timeout=2):
                return address
        except OSError as exc:
            last = str(exc)
        time.sleep(0.5)
    raise LauncherError(f"the RPC worker {host}:{port} did not listen in time ({last})")


def serve_group(config: Config, role: PodRole) -> int:
    spec = config.models[0]
    par = spec.parallel
    if role.size != par.ranks:
        raise LauncherError(f"the LeaderWorkerSet group has {role.size} pods but parallel.ranks is {par.ranks}")
    binaries = prepare_binaries(config, quiet=not role.is_leader)
    if not role.is_leader:
        argv = list(RpcServer().argv(spec, ALL_ADDRESSES, par.rpc_port, binaries))
        _log(f"worker {role.index}: {' '.join(argv)}")
        os.execvpe(argv[0], argv, {**os.environ, **dict(spec.engine.env)})
    ensure_models(config)
    deadline = time.monotonic() + spec.engine.start_timeout
    endpoints = []
    for host in worker_addresses(role.leader, role.size):
        endpoints.append(f"{wait_listening(host, par.rpc_port, deadline)}:{par.rpc_port}")
        _log(f"{host} listens on {par.rpc_port}")
    _log(f"leader: llama-server --rpc {','.join(endpoints)}")
    return serve(replace(config, models=(leader_spec(spec, endpoints),)), binaries=binaries)


def leader_spec(spec: ModelSpec, endpoints: list[str]) -> ModelSpec:
    """The model as the leader runs it: one llama-server whose devices include the workers' (--rpc)."""
    extra = ("--rpc", ",".join(endpoints))
    if spec.params.n_gpu_layers is None:
        extra += ("--n-gpu-layers", "all")   # without offload nothing goes to the RPC devices
    return replace(spec, parallel=replace(spec.parallel, mode="single", ranks=1),
                   engine=replace(spec.engine, extra_args=spec.engine.extra_args + extra))
