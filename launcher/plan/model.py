"""What a plan is: every process launcher will start, exactly, and the files it writes first.

The plan is the contract between planning and everything after it: later stages read these
fields and never parse a command line or a note back. Rendering (`render.py`) is the only
place that flattens them into text.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

from ..engines.flags import FlagIssue

if TYPE_CHECKING:
    from ..memory.plan import MemoryPlan

# Every process of an mpirun job carries JOB_ENV=<marker>, so launcher finds ranks outside mpirun's group.
JOB_ENV = "LAUNCHER_JOB"
# A worker process finds its gateway (for context.call) in WORKER_GATEWAY_ENV, and its key in
# WORKER_KEY_ENV (added when it starts, never written into a plan).
WORKER_GATEWAY_ENV, WORKER_KEY_ENV = "LAUNCHER_GATEWAY", "LAUNCHER_GATEWAY_KEY"


@dataclass(frozen=True)
class ProcessSpec:
    """One process launcher starts (role engine, mpirun or worker), or one an mpirun job starts on a rank."""
    name: str                      # log prefix, e.g. "gemma#0", "deepseek.rank1"
    role: str                      # engine | mpirun | rank | worker
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()   # added to the launcher's environment
    port: int | None = None        # where it listens (HTTP for engines and rank 0, RPC for rpc ranks)
    health_url: str | None = None
    rank: int | None = None
    devices: tuple[int, ...] = ()  # host device ids it uses
    host: str | None = None        # address it binds; `{host}` = this rank's address, filled in on the rank

    @property
    def env_dict(self) -> dict[str, str]:
        return dict(self.env)

    @classmethod
    def from_dict(cls, data: dict) -> "ProcessSpec":
        data = dict(data)
        for f in ("argv", "devices"):
            data[f] = tuple(data.get(f) or ())
        data["env"] = tuple(tuple(pair) for pair in data.get("env") or ())
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True)
class RankJob:
    """What every rank of an `rpc` job reads (from the ranks file): its role, found by rank number."""
    model: str
    multi_host: bool
    device_env: str | None         # ASCEND_RT_VISIBLE_DEVICES / CUDA_VISIBLE_DEVICES, or None on cpu
    device_ids: tuple[int, ...]
    ranks: tuple[ProcessSpec, ...]
    hosts: tuple[str, ...] = ()    # the hostfile's hosts: a rank binds the one that is its own

    def to_json(self) -> str:
        data = asdict(self)
        data["device_ids"] = list(self.device_ids)
        return json.dumps(data, indent=1, default=list)

    @classmethod
    def from_json(cls, text: str) -> "RankJob":
        data = json.loads(text)
        return cls(data["model"], data["multi_host"], data["device_env"], tuple(data["device_ids"]),
                   tuple(ProcessSpec.from_dict(r) for r in data["ranks"]), tuple(data.get("hosts") or ()))


@dataclass(frozen=True)
class MpiJob:
    """An `mpirun -np N` job, as launcher runs it (`argv`) or as the ranks of a user's mpirun see it."""
    marker: str                               # LAUNCHER_JOB value every process of the job carries
    np: int
    prefix: tuple[str, ...]                   # mpirun and its own options
    exported: tuple[tuple[str, str], ...]     # NAME=VALUE given to every rank with -x
    user_args: tuple[str, ...]                # parallel.mpirun_args
    program: tuple[str, ...]                  # what every rank runs
    rank_job: RankJob | None = None           # rpc: per-rank roles; ep_tp: None (the fork lays out ranks)

    @property
    def argv(self) -> tuple[str, ...]:
        pairs = tuple(a for k, v in self.exported for a in ("-x", f"{k}={v}"))
        return self.prefix + pairs + ("-x", JOB_ENV) + self.user_args + self.program


@dataclass(frozen=True)
class PlanFile:
    kind: str       # "ranks" (an rpc job's RankJob) | "fork-config" (the Ascend fork's YAML)
    path: str
    content: str


@dataclass(frozen=True)
class ModelPlan:
    name: str
    aliases: tuple[str, ...]
    mode: str
    processes: tuple[ProcessSpec, ...]   # started and owned by the supervisor
    job: MpiJob | None = None            # rpc / ep_tp: the mpirun job behind `processes`
    files: tuple[PlanFile, ...] = ()     # written before starting
    upstreams: tuple[str, ...] = ()      # base URLs the gateway forwards to
    slots_per_upstream: int = 1
    notes: tuple[str, ...] = ()          # things the user should know
    flag_issues: tuple[FlagIssue, ...] = ()
    capabilities: tuple[dict, ...] = ()  # what requests may route here by (a worker's are known once it runs)
    memory: MemoryPlan | None = None     # bytes per device, when the model's header is readable

    def file(self, kind: str) -> PlanFile | None:
        return next((f for f in self.files if f.kind == kind), None)

    @property
    def ranks(self) -> tuple[ProcessSpec, ...]:
        """What each rank of the job runs (shown in plans; started by mpirun, not by launcher)."""
        return self.job.rank_job.ranks if self.job and self.job.rank_job else ()


@dataclass(frozen=True)
class Plan:
    config_file: str
    gateway_host: str
    gateway_port: int
    models: tuple[ModelPlan, ...]
    origins: tuple = ()   # env_defaults.Origin of every setting the Llama Switch .env names can give
    workers: tuple[ModelPlan, ...] = ()   # Python workers (mode "worker")
    backends: tuple[tuple[str, str], ...] = ()  # (backend, why) of the models, each once
    placements: tuple = ()   # placement.Placement per backend, when the planner placed models

    def to_dict(self) -> dict:
        return asdict(self)
