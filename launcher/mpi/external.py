"""`mpirun -np N launch --config X`: the user started mpirun, so each rank is a launcher.

Rank 0 serves the gateway; its engine is rank 0's process of the plan. Ranks >= 1 run their
role: a ggml-rpc-server (rpc), or become the fork's llama-mpi-server by exec (ep_tp), so the
exec'd program is the MPI process mpirun started (launcher never initialised MPI there).
"""
from __future__ import annotations

import json
import os
from dataclasses import replace

from ..config.model import Config
from ..errors import PlanError
from ..plan.model import ProcessSpec

RANK_ENV = (("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"), ("PMI_RANK", "PMI_SIZE"),
            ("PMIX_RANK", "OMPI_COMM_WORLD_SIZE"))


def mpi_world(env=None) -> tuple[int, int] | None:
    """(rank, size) when this process was started by mpirun (Open MPI, MPICH/Hydra, PMIx)."""
    env = os.environ if env is None else env
    for rank_key, size_key in RANK_ENV:
        if env.get(rank_key, "").isdigit() and env.get(size_key, "").isdigit():
            return int(env[rank_key]), int(env[size_key])
    return None


def serve_under_mpirun(config: Config, world: tuple[int, int]) -> int:
    from ..plan import plan_for_here
    from ..serve import ensure_models, prepare_binaries, serve
    rank, size = world
    if len(config.models) != 1:
        raise PlanError("under mpirun a config serves exactly one model")
    spec = config.models[0]
    if size != spec.parallel.ranks:
        raise PlanError(f"mpirun started {size} ranks but parallel.ranks is {spec.parallel.ranks}")
    ensure_models(config)
    binaries = prepare_binaries(config, quiet=rank != 0)
    model = plan_for_here(config, binaries=binaries).models[0]
    for path, content in model.files:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(content)
    if spec.parallel.mode == "ep_tp":
        mpirun = model.processes[0]
        argv = list(mpirun.argv[mpirun.argv.index(binaries.mpi_server):])
        env = dict(os.environ)
        env.update(_exported(mpirun.argv))
        if rank > 0:
            os.execvpe(argv[0], argv, env)  # this rank of the job becomes llama-mpi-server
        engine = ProcessSpec(f"{model.name}.rank0", "engine", tuple(argv), tuple(_exported(mpirun.argv)),
                             mpirun.port, mpirun.health_url, 0, mpirun.devices)
        return serve(config, plan_models=(replace(model, processes=(engine,), files=()),), binaries=binaries)

    from .rank import handshake, serve_rpc_worker, tell_workers_to_stop
    job = json.loads(next(content for path, content in model.files if path.endswith(".ranks.json")))
    role = handshake(job)
    if rank > 0:
        return serve_rpc_worker(role)
    role.comm.barrier()
    r0 = job["ranks"][0]
    engine = ProcessSpec(r0["name"], "engine", tuple(role.argv), tuple(map(tuple, r0["env"])), r0["port"],
                         r0["health_url"], 0, tuple(r0["devices"]))
    try:
        return serve(config, plan_models=(replace(model, processes=(engine,), ranks=(), files=()),),
                     binaries=binaries)
    finally:
        tell_workers_to_stop(role)


def _exported(argv) -> list[tuple[str, str]]:
    """(name, value) of every `-x NAME=VALUE` on an mpirun line."""
    return [tuple(argv[i + 1].split("=", 1)) for i, a in enumerate(argv[:-1]) if a == "-x" and "=" in argv[i + 1]]
