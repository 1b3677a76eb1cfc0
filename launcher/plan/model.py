"""What a plan is: every process launcher will start, exactly, and the files it writes first."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Binaries:
    """Programs the plan refers to. `help_texts` (binary -> `--help` output) enables flag checks."""
    llama_server: str = "llama-server"
    rpc_server: str = "ggml-rpc-server"
    mpi_server: str = "llama-mpi-server"
    llama_bench: str = "llama-bench"
    mpirun: str = "mpirun"
    python: str = "python3"
    bindings_env: tuple[tuple[str, str], ...] = ()  # LLAMA_CPP_LIB_PATH for the llama-cpp-python engine
    help_texts: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=False)

    def help_of(self, binary: str) -> str | None:
        return dict(self.help_texts).get(binary)


@dataclass(frozen=True)
class ProcessSpec:
    """One process launcher starts (or, for `role == "rank"`, one that mpirun starts)."""
    name: str                      # log prefix, e.g. "gemma#0", "deepseek.rank1"
    role: str                      # engine | mpirun | rank
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()   # added to the launcher's environment
    port: int | None = None        # where it serves HTTP (engines, rank 0)
    health_url: str | None = None
    rank: int | None = None
    devices: tuple[int, ...] = ()  # host device ids it uses

    @property
    def env_dict(self) -> dict[str, str]:
        return dict(self.env)


@dataclass(frozen=True)
class ModelPlan:
    name: str
    aliases: tuple[str, ...]
    mode: str
    processes: tuple[ProcessSpec, ...]   # started and owned by the supervisor
    ranks: tuple[ProcessSpec, ...] = ()  # started by mpirun (shown; run through `launch rank`)
    files: tuple[tuple[str, str], ...] = ()  # (path, content) written before starting
    upstreams: tuple[str, ...] = ()      # base URLs the gateway forwards to
    slots_per_upstream: int = 1
    notes: tuple[str, ...] = ()          # unsupported flags and other things the user should know


@dataclass(frozen=True)
class Plan:
    config_file: str
    gateway_host: str
    gateway_port: int
    models: tuple[ModelPlan, ...]

    def to_dict(self) -> dict:
        return asdict(self)
