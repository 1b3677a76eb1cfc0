"""`mpirun -np N launch --config X`: the user started mpirun, so each rank is a launcher.

Rank 0 serves the gateway; its engine is rank 0's process of the plan. Ranks >= 1 run their
role: a ggml-rpc-server (rpc), or become the fork's llama-mpi-server by exec (ep_tp), so the
exec'd program is the MPI process mpirun started (launcher never initialised MPI there).
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from ..config.model import Config
from ..errors import PlanError
from ..mpi.rank import handshake, serve_rpc_worker, tell_workers_to_stop
from ..plan import ModelPlan, ProcessSpec, plan_for_here
from ..prepare import ensure_models, prepare_binaries
from ..serve import serve
from ..supervise.runner import write_plan_files


def serve_under_mpirun(config: Config, world: tuple[int, int]) -> int:
    rank, size = world
    if len(config.models) != 1:
        raise PlanError("under mpirun a config serves exactly one model")
    spec = config.models[0]
    if size != spec.parallel.ranks:
        raise PlanError(f"mpirun started {size} ranks but parallel.ranks is {spec.parallel.ranks}")
    ensure_models(config)
    binaries = prepare_binaries(config, quiet=rank != 0)
    # Each rank plans on its own (its own free port for the engine): its files go to a folder of its own, or
    # ranks on one host would overwrite each other's fork YAML and rank 0's engine could listen elsewhere.
    model = plan_for_here(config, binaries=binaries, run_name=f"{Path(config.file).stem}.rank{rank}").models[0]
    write_plan_files(model)
    job, mpirun = model.job, model.processes[0]
    if job is None:
        raise PlanError(f"mode {spec.parallel.mode} does not run under mpirun")

    def serve_engine(engine: ProcessSpec) -> int:
        """Rank 0: this model's one engine is the given process; mpirun is the user's."""
        one: ModelPlan = replace(model, processes=(engine,), job=None, files=())
        return serve(config, plan_models=(one,), binaries=binaries)

    if job.rank_job is None:  # ep_tp: every rank runs the fork's program
        if rank > 0:
            os.execvpe(job.program[0], list(job.program), {**os.environ, **dict(job.exported)})
        return serve_engine(ProcessSpec(f"{model.name}.rank0", "engine", job.program, job.exported, mpirun.port,
                                        mpirun.health_url, 0, mpirun.devices, mpirun.host))
    role = handshake(job.rank_job)
    if rank > 0:
        return serve_rpc_worker(role)
    role.comm.barrier()
    try:
        return serve_engine(replace(job.rank_job.ranks[0], role="engine", argv=tuple(role.argv)))
    finally:
        tell_workers_to_stop(role)
