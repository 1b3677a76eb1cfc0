"""What each MPI rank runs in `rpc` mode, whether launcher started mpirun or the user did.

Each rank learns its role through mpi4py (world rank, local rank on its host) and exchanges
addresses with allgather. Ranks >= 1 start a ggml-rpc-server; a barrier then releases rank 0,
whose llama-server connects to all of them. A rank whose process dies exits non-zero, which
makes mpirun take the whole job down; a rank whose parent vanished, or that rank 0 told to
stop, ends its process and exits.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..children import die_with_parent, terminate
from ..plan.model import RankJob

STOP_TAG = 77
RANK_ENV = (("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"), ("PMI_RANK", "PMI_SIZE"),
            ("PMIX_RANK", "OMPI_COMM_WORLD_SIZE"))


def mpi_world(env=None) -> tuple[int, int] | None:
    """(rank, size) when this process was started by mpirun (Open MPI, MPICH/Hydra, PMIx)."""
    env = os.environ if env is None else env
    for rank_key, size_key in RANK_ENV:
        if env.get(rank_key, "").isdigit() and env.get(size_key, "").isdigit():
            return int(env[rank_key]), int(env[size_key])
    return None


def _log(rank: int, text: str) -> None:
    sys.stdout.write(f"[rank {rank}] {text}\n")
    sys.stdout.flush()


def is_local(address: str) -> bool:
    """Whether this host owns `address` (it can bind it)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((address, 0))
        return True
    except OSError:
        return False


def own_address(job: RankJob, hostnames: list[str]) -> str:
    """A rank's address across hosts: the hostfile host that is this one (whatever mpirun's mapping),
    else the address on the route to rank 0's host."""
    for host in job.hosts:
        try:
            address = socket.gethostbyname(host)
        except OSError:
            continue
        if not address.startswith("127.") and is_local(address):
            return address
    return outward_address(job.hosts[0] if job.hosts else hostnames[0])


def outward_address(peer_host: str) -> str:
    """This host's address on the route to `peer_host` (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((socket.gethostbyname(peer_host), 9))
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def substitute(arg: str, hosts: list[str], own: str) -> str:
    for r, host in enumerate(hosts):
        arg = arg.replace(f"{{host:{r}}}", host)
    return arg.replace("{host}", own)


@dataclass
class Role:
    """This rank's part of the job, with addresses filled in."""
    comm: object
    rank: int
    local_rank: int
    argv: list[str]
    env: dict[str, str]
    host: str | None   # where its server binds
    port: int | None


def handshake(job: RankJob) -> Role:
    """Collective part every rank runs: roles, addresses, per-rank argv and devices."""
    # Importing mpi4py initialises MPI: only on a rank, never in launcher's own process.
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    if size != len(job.ranks):
        _log(rank, f"the plan has {len(job.ranks)} ranks but mpirun started {size}")
        comm.Abort(2)
    local_rank = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
    hostnames = comm.allgather(socket.gethostname())
    own = own_address(job, hostnames) if job.multi_host and rank else "127.0.0.1"
    hosts = comm.allgather(own)
    spec = job.ranks[rank]
    argv = [substitute(a, hosts, own) for a in spec.argv]
    env = dict(os.environ)
    env.update(spec.env_dict)
    if job.multi_host and job.device_env and job.device_ids:
        env[job.device_env] = str(job.device_ids[local_rank % len(job.device_ids)])
    _log(rank, f"local rank {local_rank} on {hostnames[rank]}: {' '.join(argv)}")
    host = substitute(spec.host, hosts, own) if spec.host else None
    return Role(comm, rank, local_rank, argv, env, host, spec.port)


def run_rank(path: str) -> int:
    """`launch rank FILE`: the program launcher's own mpirun line starts on every rank."""
    role = handshake(RankJob.from_json(Path(path).read_text()))
    stopping = _stop_on_signals()
    if role.rank == 0:
        role.comm.barrier()  # every RPC server listens before llama-server connects to them
        return _watch(_start(role), role, stopping)
    return serve_rpc_worker(role, stopping)


def serve_rpc_worker(role: Role, stopping: threading.Event | None = None) -> int:
    """Ranks >= 1: start ggml-rpc-server, wait until it listens, release rank 0, then watch."""
    stopping = stopping or _stop_on_signals()
    proc = _start(role)
    host = "127.0.0.1" if role.host in (None, "0.0.0.0", "") else role.host
    if role.port is None or not wait_listening(host, role.port, proc):
        _log(role.rank, f"ggml-rpc-server did not come up (exit {proc.poll()}); aborting the job")
        role.comm.Abort(1)
    role.comm.barrier()
    return _watch(proc, role, stopping)


def tell_workers_to_stop(role: Role) -> None:
    """Rank 0 is done: the others would otherwise run on, and mpirun would wait for them."""
    for r in range(1, role.comm.Get_size()):
        role.comm.isend(None, dest=r, tag=STOP_TAG)


def wait_listening(host: str, port: int, proc: subprocess.Popen, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _stop_on_signals() -> threading.Event:
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    return stopping


def _start(role: Role) -> subprocess.Popen:
    proc = subprocess.Popen(role.argv, env=role.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", preexec_fn=die_with_parent)
    threading.Thread(target=_pump, args=(proc, role.rank), daemon=True).start()
    return proc


def _pump(proc: subprocess.Popen, rank: int) -> None:
    assert proc.stdout
    for line in proc.stdout:
        _log(rank, line.rstrip("\n"))


def _watch(proc: subprocess.Popen, role: Role, stopping: threading.Event) -> int:
    parent = os.getppid()
    while not stopping.is_set():
        code = proc.poll()
        if code is not None:
            # A plain non-zero exit would leave mpirun waiting for the other ranks: abort the job.
            _log(role.rank, f"{Path(proc.args[0]).name} exited with {code}; aborting the MPI job")
            role.comm.Abort(1)
            return 1
        if os.getppid() != parent:  # mpirun is gone: nobody will stop us
            _log(role.rank, "parent gone; stopping")
            break
        if role.rank and role.comm.Iprobe(source=0, tag=STOP_TAG):
            _log(role.rank, "rank 0 is done; stopping")
            break
        time.sleep(0.2)
    terminate(proc)
    return 0
