"""Pure planning: (config, devices, binaries, ports, host) -> Plan. No processes, files, network or
environment: everything it reads from the outside is an argument.

Engines always listen on 127.0.0.1 at an internal port; only the gateway is public.
Device visibility is given per process through the runtime's own variable
(ASCEND_RT_VISIBLE_DEVICES / CUDA_VISIBLE_DEVICES), after which llama.cpp numbers
the devices from 0 (CANN0.., CUDA0..), so tensor_split and main_gpu index within them.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

from ..binaries import Binaries
from ..config.hostfile import from_pairs
from ..config.model import Config, ModelSpec
from ..devices import VISIBLE_ENV, DeviceSet
from ..engines import LOOPBACK, RPC_SERVER_KIND, LlamaServer, Slot, engine_for
from ..errors import PlanError
from ..models.embedded import model_file
from .hccl import hccl_env, rank_table
from .layout import device_ids, replica_groups
from .model import (
    JOB_ENV,
    ModelPlan,
    MpiJob,
    Plan,
    PlanFile,
    ProcessSpec,
    RankJob,
)
from .workers import plan_worker


@dataclass(frozen=True)
class Host:
    """Facts about the machine that shape command lines (kept explicit so planning stays pure)."""
    cpu_count: int = 2
    is_root: bool = False
    run_dir: str = "/tmp/launcher-run"        # where plan files are written
    models_dir: str = "/tmp/launcher-models"  # where embedded models are assembled
    device_ips: tuple[tuple[int, str], ...] = ()  # this host's NPU addresses (hccn_tool), for HCCL rank tables


def make_plan(config: Config, devices, binaries: Binaries, ports: Iterator[int], host: Host = Host()) -> Plan:
    """`devices` is one DeviceSet for every model, or a function backend -> DeviceSet (None: not known,
    as with --offline: the config's device ids are planned as they are written)."""
    pick = devices if callable(devices) else (lambda backend: devices)
    models = tuple(_with_rules(plan_model(spec, pick(spec.devices.backend), binaries, ports, host), spec)
                   for spec in config.models)
    workers = tuple(plan_worker(w, pick(w.devices.backend), binaries, ports, config.gateway) for w in config.workers)
    backends = tuple(dict.fromkeys((s.devices.backend, s.devices.chosen_by or "the config names it")
                                   for s in config.models))
    return Plan(config.file, config.gateway.host, config.gateway.port, models, config.origins + binaries.origins,
                workers, backends)


def _with_rules(plan: ModelPlan, spec: ModelSpec) -> ModelPlan:
    """The gateway's parameter rules for the model, in its notes (the gateway applies them, not the engine)."""
    return replace(plan, notes=plan.notes + (spec.rules_note,)) if spec.rules_note else plan


def plan_model(spec: ModelSpec, devices: DeviceSet | None, binaries: Binaries, ports: Iterator[int],
               host: Host) -> ModelPlan:
    if devices is None:
        devices = DeviceSet(spec.devices.backend)  # unknown: nothing detected, no memory sizes
        unknown = spec.devices.backend != "cpu"
    else:
        unknown = False
    ids = device_ids(spec, devices)
    mode = spec.parallel.mode
    if mode in ("single", "layer"):
        plan = _replicated(spec, [ids], devices, binaries, ports, host)
    elif mode == "replicas":
        plan = _replicated(spec, replica_groups(spec, ids), devices, binaries, ports, host)
    elif mode == "rpc":
        plan = _rpc(spec, ids, binaries, next(ports), host)
    elif mode == "ep_tp":
        plan = _ep_tp(spec, ids, binaries, next(ports), host)
    else:
        raise PlanError(f"unknown parallel mode {mode!r}")
    if unknown:
        note = (f"planned without the target machine: {spec.devices.backend} devices {list(ids)} as the config lists "
                "them, not checked" + ("; tensor_split is equal because device memory is unknown"
                                       if mode == "layer" and spec.params.tensor_split is None else ""))
        plan = replace(plan, notes=(note,) + plan.notes)
    return replace(plan, capabilities=tuple(spec.capabilities), notes=spec.machine_notes + plan.notes)


def _model_path(spec: ModelSpec, host: Host) -> str:
    return model_file(spec, Path(host.models_dir))


def _base_env(spec: ModelSpec, group: tuple[int, ...], threads: int | None) -> list[tuple[str, str]]:
    env: list[tuple[str, str]] = []
    if spec.devices.backend in VISIBLE_ENV:
        env.append((VISIBLE_ENV[spec.devices.backend], ",".join(map(str, group))))
    if threads:
        env.append(("OMP_NUM_THREADS", str(threads)))
    return env + list(spec.engine.env)


def _cpu_threads(spec: ModelSpec, share: int, host: Host) -> int | None:
    """CPU replicas split the cores so they do not fight; a single engine keeps its default."""
    if spec.params.n_threads:
        return spec.params.n_threads
    return max(1, host.cpu_count // share) if share > 1 else None


def _layer_flags(spec: ModelSpec, group: tuple[int, ...], devices: DeviceSet) -> list[str]:
    """--split-mode/--tensor-split for an engine spanning several devices, unless the user set them."""
    if len(group) < 2:
        return []
    out = [] if spec.params.split_mode else ["--split-mode", "layer"]
    if spec.params.tensor_split is None:
        mems = [devices.memory_of(i) for i in group]
        shares = mems if all(mems) else [1] * len(group)  # unknown memory (assumed devices): equal
        out += ["--tensor-split", ",".join(str(m) for m in shares)]
    return out


def _replicated(spec: ModelSpec, groups: list[tuple[int, ...]], devices: DeviceSet, binaries: Binaries,
                ports: Iterator[int], host: Host) -> ModelPlan:
    procs, files, issues, notes = [], [], [], []
    threads = _cpu_threads(spec, len(groups), host) if spec.devices.backend == "cpu" else None
    engine = engine_for(spec)
    for i, group in enumerate(groups):
        port = next(ports)
        env = _base_env(spec, group, threads)
        name = f"{spec.name}#{i}"
        extra = _layer_flags(spec, group, devices)
        if threads and not spec.params.n_threads and len(groups) > 1:
            extra += ["--threads", str(threads)]
        launch = engine.launch(spec, Slot(i, group, port, _model_path(spec, host), host.run_dir, tuple(extra), threads),
                               binaries)
        env += list(launch.env)
        files += [PlanFile(*f) for f in launch.files]
        issues += [x for x in launch.issues if x not in issues]
        notes += [n for n in launch.notes if n not in notes]
        procs.append(ProcessSpec(name, "engine", launch.argv, tuple(env), port, engine.health_url(port), None, group,
                                 LOOPBACK))
    return ModelPlan(spec.name, spec.aliases, spec.parallel.mode, tuple(procs), None, tuple(files),
                     tuple(f"http://{LOOPBACK}:{p.port}" for p in procs), spec.params.n_parallel or 1,
                     tuple(notes), tuple(issues))


def _mpi_job(spec: ModelSpec, binaries: Binaries, port: int, exported: list[tuple[str, str]],
             program: list[str], host: Host, rank_job: RankJob | None = None) -> MpiJob:
    par = spec.parallel
    prefix = [par.mpirun or binaries.mpirun, "-np", str(par.ranks)]
    if par.hostfile:
        prefix += ["--hostfile", par.hostfile]
    if host.is_root:
        prefix.append("--allow-run-as-root")
    # Open MPI binds each rank to one core by default; llama.cpp runs its own thread pool.
    prefix += ["--bind-to", "none"]
    if spec.devices.backend == "cpu":
        prefix.append("--oversubscribe")
    # Carried by every process of the job so launcher can find ranks outside mpirun's process group.
    marker = f"{spec.name}@{port}"
    return MpiJob(marker, par.ranks, tuple(prefix), tuple(exported), tuple(par.mpirun_args), tuple(program),
                  rank_job)


def _mpirun_process(spec: ModelSpec, job: MpiJob, port: int, ids: tuple[int, ...]) -> ProcessSpec:
    return ProcessSpec(f"{spec.name}.mpirun", "mpirun", job.argv, ((JOB_ENV, job.marker),), port,
                       f"http://{LOOPBACK}:{port}/health", None, ids, LOOPBACK)


def _multi_host_notes(spec: ModelSpec, paths: list[str]) -> tuple[str, ...]:
    """Where each rank runs (Open MPI's --map-by slot over the hostfile), and what every host must have."""
    if not spec.parallel.hostfile:
        return ()
    notes = []
    if spec.parallel.hosts:
        placed = from_pairs(spec.parallel.hosts).rank_hosts(spec.parallel.ranks)
        spans = [f"{h}: {_span([r for r, x in enumerate(placed) if x == h])}" for h in dict.fromkeys(placed)]
        notes.append("ranks by host (mpirun --map-by slot): " + "; ".join(spans))
    notes.append("every host needs these at the same paths (a shared filesystem, or copies): "
                 + ", ".join(dict.fromkeys(paths)))
    return tuple(notes)


def _span(ranks: list[int]) -> str:
    return f"rank {ranks[0]}" if len(ranks) == 1 else f"ranks {ranks[0]}-{ranks[-1]}"


def _hccl_servers(spec: ModelSpec, ids: tuple[int, ...], host: Host) -> list[tuple[str, list[tuple[int, str]]]]:
    """(server address, [(device id, device address)]) per host, in rank order, for the rank table."""
    par, hccl = spec.parallel, spec.parallel.hccl
    per = par.devices_per_rank or 1
    if par.hosts:
        layout = from_pairs(par.hosts)
        counts = [(h, len(layout.ranks_on(h, par.ranks)) * per) for h in layout.hosts]
    elif par.hostfile:  # the hostfile is not here (--offline): the hosts device_ips names, each one full
        counts = [(h, len(ids)) for h, _ in hccl.device_ips]
    else:
        counts = [("", par.ranks * per)]
    servers = []
    for name, count in counts:
        # Read with hccn_tool on this host: by device id (the host read every HCCL model's devices at once).
        read = dict(host.device_ips)
        ips = hccl.ips_of(name) or tuple(read[i] for i in ids[:count] if i in read)
        if len(ips) < count or len(ids) < count:
            raise PlanError(f"{spec.name}: the HCCL rank table needs an address for each of {count} NPU(s) on "
                            f"{name or 'this host'}: set parallel.hccl.device_ips (hccn_tool -i N -ip -g)")
        server = name or hccl.if_ip or LOOPBACK
        servers.append((server, [(ids[k], ips[k]) for k in range(count)]))
    return servers


def _ep_tp(spec: ModelSpec, ids: tuple[int, ...], binaries: Binaries, port: int, host: Host) -> ModelPlan:
    # Every rank sees the job's devices and takes the one of its local rank (the fork's and MindIE's way).
    exported = _base_env(spec, ids, None)
    # the fork's llama-mpi-server (the config checks refuse ep_tp with any other engine)
    launch = engine_for(spec).launch(spec, Slot(0, ids, port, _model_path(spec, host), host.run_dir), binaries)
    program, server = list(launch.argv), launch.argv[0]
    files = [PlanFile(*f) for f in launch.files]
    if spec.parallel.hccl is not None and spec.parallel.hccl.rank_table:
        exported += hccl_env(spec.parallel.hccl, spec.parallel.hccl.rank_table)
    elif spec.parallel.hccl is not None:
        table = f"{host.run_dir}/{spec.name}.hccl.json"
        files.append(PlanFile("rank-table", table, rank_table(_hccl_servers(spec, ids, host))))
        exported += hccl_env(spec.parallel.hccl, table)
    job = _mpi_job(spec, binaries, port, exported, program, host)
    return ModelPlan(spec.name, spec.aliases, "ep_tp", (_mpirun_process(spec, job, port, ids),), job, tuple(files),
                     (f"http://{LOOPBACK}:{port}",), spec.params.n_parallel or 1,
                     ("rank 0 of llama-mpi-server serves HTTP; the other ranks follow its batches",)
                     + _multi_host_notes(spec, [_model_path(spec, host), server] + [f.path for f in files]))


def _rpc(spec: ModelSpec, ids: tuple[int, ...], binaries: Binaries, port: int, host: Host) -> ModelPlan:
    par = spec.parallel
    multi_host = par.hostfile is not None
    workers: list[ProcessSpec] = []
    endpoints = []
    for r in range(1, par.ranks):
        rpc_port = par.rpc_port + r - 1
        bind = par.rpc_host or ("{host}" if multi_host else LOOPBACK)
        endpoints.append(f"{{host:{r}}}:{rpc_port}" if multi_host else f"{par.rpc_host or LOOPBACK}:{rpc_port}")
        group = (ids[r % len(ids)],) if ids else ()
        argv = RPC_SERVER_KIND.argv(spec, bind, rpc_port, binaries)
        workers.append(ProcessSpec(f"{spec.name}.rank{r}", "rank", argv, tuple(_base_env(spec, group, None)),
                                   rpc_port, None, r, group, bind))
    extra = ["--rpc", ",".join(endpoints)]
    if spec.params.n_gpu_layers is None:
        extra += ["--n-gpu-layers", "all"]  # without offload nothing goes to the RPC devices
    # Rank 0 takes --rpc on its command line: llama-server's flags whatever the flavor (the fork's YAML has no --rpc).
    rank0_engine = LlamaServer()
    launch = rank0_engine.launch(spec, Slot(0, ids[:1], port, _model_path(spec, host), host.run_dir, tuple(extra)),
                                 binaries)
    argv0, issues = launch.argv, launch.issues
    group0 = (ids[0],) if ids else ()
    rank0 = ProcessSpec(f"{spec.name}.rank0", "rank", argv0, tuple(_base_env(spec, group0, None)), port,
                        rank0_engine.health_url(port), 0, group0, LOOPBACK)
    rank_job = RankJob(spec.name, multi_host, VISIBLE_ENV.get(spec.devices.backend), ids, (rank0, *workers),
                       tuple(h for h, _ in par.hosts))
    ranks_file = f"{host.run_dir}/{spec.name}.ranks.json"
    job = _mpi_job(spec, binaries, port, [], [binaries.python, "-m", "launcher", "rank", ranks_file], host, rank_job)
    notes = ("ggml RPC is unauthenticated: keep rpc_host on a private network",) + _multi_host_notes(
        spec, [_model_path(spec, host), argv0[0], binaries.rpc_server, binaries.python + " (with launcher installed)",
               ranks_file])
    return ModelPlan(spec.name, spec.aliases, "rpc", (_mpirun_process(spec, job, port, ids),), job,
                     (PlanFile("ranks", ranks_file, rank_job.to_json()),), (f"http://{LOOPBACK}:{port}",),
                     spec.params.n_parallel or 1, notes, tuple(issues))
