"""Typed, frozen config objects. Built once from validated data; nothing downstream takes a dict.

Field defaults here are launcher's defaults; `None` in EngineParams means "not set:
leave the engine's own default", so command lines stay short and honest.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

EMBEDDED_PREFIX = "embedded:"


def default_name(model: str, alias: str | None) -> str:
    """The name clients use: the alias, else the embedded model's name, else the file stem."""
    if alias:
        return alias
    if model.startswith(EMBEDDED_PREFIX):
        return model[len(EMBEDDED_PREFIX):]
    return model.rsplit("/", 1)[-1].removesuffix(".gguf")


@dataclass(frozen=True)
class EngineParams:
    """The Ascend guide's engine keys (top level of the YAML). Test keeps this in step with the schema."""
    model_alias: str | None = None
    n_ctx: int | None = None
    n_batch: int | None = None
    n_ubatch: int | None = None
    n_parallel: int | None = None
    n_threads: int | None = None
    n_threads_batch: int | None = None
    n_threads_http: int | None = None
    n_gpu_layers: int | str | None = None
    main_gpu: int | None = None
    split_mode: str | None = None
    tensor_split: tuple[float, ...] | None = None
    use_mmap: bool | None = None
    use_mlock: bool | None = None
    check_tensors: bool | None = None
    defrag_thold: float | None = None
    no_perf: bool | None = None
    cont_batching: bool | None = None
    special: bool | None = None
    reranking: bool | None = None
    embeddings: bool | None = None
    flash_attn: str | None = None
    cache_type_k: str | None = None
    cache_type_v: str | None = None
    swa_full: bool | None = None
    repack: bool | None = None
    chat_template: str | None = None
    jinja: bool | None = None
    seed: int | None = None
    enable_mla: bool | None = None
    enable_fused_moe: bool | None = None
    offload_input: bool | None = None
    enable_ge: bool | None = None
    display_chat: bool | None = None
    presample_count: int | None = None
    enable_cann_flash_attention: bool | None = None

    def set_items(self) -> list[tuple[str, Any]]:
        """(key, value) for every key the user set, in declaration order."""
        return [(f.name, getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None]


@dataclass(frozen=True)
class Devices:
    backend: str = "cpu"
    ids: tuple[int, ...] | None = None  # None: every visible device
    memory: int | None = None           # MiB of each device, when given (else detected)
    chosen_by: str = ""                 # why, when the machine chose the backend (the config names none)
    auto: bool = False                  # `ids: auto`: the planner places the model from its memory plan
    every: bool = False                 # `ids: all`, said explicitly: never placed


@dataclass(frozen=True)
class Hccl:
    """The Ascend fork's HCCL settings (ep_tp): the rank table's device addresses and HCCL_* variables."""
    device_ips: tuple[tuple[str, tuple[str, ...]], ...] = ()   # (host, addresses in devices.ids order); "" = this host
    connect_timeout: int | None = None
    exec_timeout: int | None = None
    if_ip: str | None = None
    socket_ifname: str | None = None
    buffsize: int | None = None
    rank_table: str | None = None   # a table someone else wrote (ascend-operator, in a pod): used as it is

    def ips_of(self, host: str) -> tuple[str, ...]:
        table = dict(self.device_ips)
        return table.get(host, table.get("", ()))


@dataclass(frozen=True)
class Parallel:
    mode: str = "single"
    replicas: int = 1
    devices_per_replica: int | None = None
    ranks: int = 1
    devices_per_rank: int | None = None   # ep_tp: NPUs per rank (None: one, as the guide runs it)
    tp_size: int = 1
    dp_size: int = 1
    ep_size: int = 1
    moe_tp_size: int = 1
    hostfile: str | None = None       # absolute after loading
    rpc_host: str | None = None     # default: loopback on one host
    rpc_port: int = 50052
    mpirun: str | None = None
    mpirun_args: tuple[str, ...] = ()
    hccl: Hccl | None = None
    hosts: tuple[tuple[str, int], ...] = ()   # (host, slots) as the hostfile lists them, read at load

    @property
    def uses_mpi(self) -> bool:
        return self.mode in ("rpc", "ep_tp")


@dataclass(frozen=True)
class Engine:
    flavor: str = "upstream"
    kind: str = "llama-server"
    binary: str | None = None
    extra_args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    start_timeout: float = 600.0
    max_restarts: int = 5
    restart_backoff: float = 1.0
    exit_on_failure: bool = False


@dataclass(frozen=True)
class NamedKey:
    """A gateway key with a name, the models it may use and its limits (gateway/keys.py reads its secret)."""
    name: str
    key_env: str | None = None
    key_file: str | None = None       # absolute
    models: tuple[str, ...] = ("*",)  # globs
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_concurrent: int | None = None


@dataclass(frozen=True)
class Gateway:
    host: str = "127.0.0.1"
    port: int = 8080
    grpc_port: int | None = None    # KServe v2 gRPC on a port of its own (the HTTP port answers gRPC too)
    openai_port: int | None = None  # the gateway on a second port too (anyserve's --openai-port)
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    api_key_file: str | None = None
    api_key_env: str | None = None
    keys: tuple[NamedKey, ...] = ()
    usage_db: str | None = None       # absolute; None: the default under the cache directory
    capture: tuple[tuple[str, object], ...] | None = None   # {requests, bytes, redact}; None: off
    admin_key_env: str | None = None
    cors_origins: tuple[str, ...] = ()
    max_queue: int = 64
    max_body_bytes: int = 32 * 2**20
    body_timeout: float = 30.0
    header_timeout: float = 10.0
    drain_timeout: float = 30.0
    telemetry_interval: float = 10.0
    request_timeout: float = 600.0
    connect_timeout: float = 5.0
    log_dir: str | None = None
    register_with: str | None = None     # another gateway's URL: register our capabilities there
    register_key_env: str | None = None
    advertise_url: str | None = None
    replica_id: str | None = None
    max_loaded: int | None = None    # most models loaded at once (LRU eviction of idle ones)
    load_timeout: float = 600.0      # how long a request waits for an on-demand load

    @property
    def local_url(self) -> str:
        """Where a client on this machine reaches the gateway (a wildcard bind answers on loopback)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    @property
    def public_url(self) -> str:
        """What other gateways and clients are told to use (registration, /route)."""
        return self.advertise_url or self.local_url


@dataclass(frozen=True)
class Build:
    source: str | None = None
    backend: str | None = None
    cmake_args: tuple[str, ...] = ()
    soc_type: str | None = None
    acl_graph: bool = False
    cuda_architectures: str | None = None
    native: bool = True


@dataclass(frozen=True)
class Defaults:
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repeat_penalty: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] | None = None

    def as_request_fields(self) -> dict:
        """OpenAI request fields (llama-server also reads top_k and repeat_penalty)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        if "stop" in out:
            out["stop"] = list(out["stop"])
        return out


@dataclass(frozen=True)
class ModelSpec:
    """One served model: what to load, on which devices, in which parallel layout."""
    name: str
    model: str                 # absolute path, or embedded:NAME
    params: EngineParams
    devices: Devices
    parallel: Parallel
    engine: Engine
    defaults: Defaults
    preload: bool = True       # start with launcher; else load on first request
    ttl: float | None = None   # unload after this many idle seconds
    extra_capabilities: tuple[tuple[tuple[str, Any], ...], ...] = ()  # from YAML, as sorted pairs
    machine_notes: tuple[str, ...] = ()  # what the machine decided for a guide-style config, and why
    served_aliases: tuple[str, ...] = ()   # `aliases:`: more names requests may use, listed in /v1/models
    set_params: tuple[tuple[str, Any], ...] = ()   # request fields forced to a value (gateway side)
    strip_params: tuple[str, ...] = ()             # request fields removed (gateway side)

    @property
    def capabilities(self) -> list[dict]:
        """What requests may route to this model by: the implicit ones, then the declared ones, each
        with `model: <name>`."""
        kinds = ["chat", "completion"] + (["embed"] if self.params.embeddings else [])
        out = [{"type": kind, "model": self.name} for kind in kinds]
        out += [dict(pairs) | {"model": self.name} for pairs in self.extra_capabilities]
        return out

    @property
    def aliases(self) -> tuple[str, ...]:
        """Names a request's `model` field may use: alias, file stem, file name."""
        names = [self.name, *self.served_aliases]
        if not self.model.startswith(EMBEDDED_PREFIX):
            base = self.model.rsplit("/", 1)[-1]
            names += [base, base[:-5] if base.endswith(".gguf") else base]
        return tuple(dict.fromkeys(names))

    @property
    def rules_note(self) -> str | None:
        """`set_params` / `strip_params` as `launch plan` shows them."""
        parts = [f"set {k}={v!r}" for k, v in self.set_params]
        if self.strip_params:
            parts.append("strip " + ", ".join(self.strip_params))
        return "requests: " + "; ".join(parts) + " (set_params / strip_params)" if parts else None

    @property
    def is_embedded(self) -> bool:
        return self.model.startswith(EMBEDDED_PREFIX)

    @property
    def embedded_name(self) -> str | None:
        return self.model[len(EMBEDDED_PREFIX):] if self.is_embedded else None


WORKER_ENGINE = Engine(kind="worker")


@dataclass(frozen=True)
class WorkerSpec:
    """A Python worker (a launcher.worker App) in `processes` processes behind the gateway. It has the
    attributes of a ModelSpec the supervisor reads, so one runner supervises both."""
    name: str
    app: str                   # module:attribute
    factory: bool = False
    processes: int = 1          # started first, and never fewer (min)
    max_processes: int = 1      # above `processes`: started and stopped by load (gateway/scaling.py)
    threads: int = 4
    scale_up_after: float = 0.5    # seconds a request may wait before another process starts
    scale_down_after: float = 30.0  # seconds a process above min may idle before it stops
    path: tuple[str, ...] = ()  # absolute folders put first on sys.path
    env: tuple[tuple[str, str], ...] = ()
    devices: Devices = Devices()
    engine: Engine = WORKER_ENGINE  # start_timeout, max_restarts, restart_backoff
    defaults: Defaults = Defaults()
    preload: bool = True
    ttl: float | None = None

    @property
    def scales(self) -> bool:
        return self.max_processes > self.processes


def default_worker_name(app: str) -> str:
    """`examples.basic.app:app` -> `basic`: the module's last part, its package's when that is generic."""
    parts = app.split(":", 1)[0].split(".")
    while len(parts) > 1 and parts[-1] in ("app", "main", "server", "worker"):
        parts.pop()
    return parts[-1]


@dataclass(frozen=True)
class Config:
    file: str
    models: tuple[ModelSpec, ...]
    gateway: Gateway
    build: Build
    models_dir: str | None = None
    origins: tuple = ()   # env_defaults.Origin: where the Llama Switch .env names' settings came from
    workers: tuple[WorkerSpec, ...] = ()
