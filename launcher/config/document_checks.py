"""Cross-field checks on the document alone, each with the reason spelled out.

They need nothing from the machine, so `--offline` runs all of them.
"""
from __future__ import annotations

from .inherit import ModelView, get, model_views
from .model import default_name, default_worker_name
from .problems import Problem
from .schema import annotated, engine_keys
from .source import Source

FORK = "the Ascend fork of llama.cpp (engine.flavor: ascend-fork)"
MPI_SIZES = ("tp_size", "dp_size", "ep_size", "moe_tp_size", "devices_per_rank")
LOCAL_HOSTS = (None, "127.0.0.1", "localhost", "::1")


def _top_name(d: dict) -> str:
    return default_name(d.get("model") or "", d.get("model_alias")).casefold() if isinstance(d.get("model"), str) \
        else ""


def _capability_checks(v: ModelView) -> list[Problem]:
    """A model's declared capabilities get `model: <its name>`; naming another model would misroute."""
    name = default_name(v.get("model", kind=str) or "", v.get("model_alias", kind=str))
    out = []
    for i, cap in enumerate(v.get("capabilities", kind=list) or []):
        if isinstance(cap, dict) and "model" in cap and str(cap["model"]) != name:
            out.append(v.problem(("capabilities", i, "model"), f"a capability of model {name!r} names model "
                                 f"{cap['model']!r}", hint=f"leave `model` out: launcher adds model: {name}"))
    return out


def _worker_checks(src: Source, d: dict, model_names: set[str]) -> list[Problem]:
    """Worker names are unique, and differ from model names (logs, metrics and /v1/models show both)."""
    out, seen = [], {}
    workers = d.get("workers") if isinstance(d.get("workers"), list) else []
    for i, w in enumerate(workers):
        if not isinstance(w, dict) or not isinstance(w.get("app"), str):
            continue
        name = w.get("name") if isinstance(w.get("name"), str) else default_worker_name(w["app"])
        where = ("workers", i, "name") if "name" in w else ("workers", i, "app")
        if name.casefold() in seen:
            out.append(src.problem(where, f"worker name {name!r} is also used by workers[{seen[name.casefold()]}]",
                                   hint="give each worker its own `name:`"))
        elif name.casefold() in model_names:
            out.append(src.problem(where, f"worker name {name!r} is also a model's name",
                                   hint="give the worker another `name:`"))
        seen.setdefault(name.casefold(), i)
        processes = w.get("processes")
        if isinstance(processes, dict) and isinstance(processes.get("max"), int) \
                and isinstance(processes.get("min", 1), int) and processes.get("min", 1) > processes["max"]:
            out.append(src.problem(("workers", i, "processes", "min"), f"processes.min ({processes.get('min')}) is "
                                   f"above processes.max ({processes['max']})", hint="min is what always runs, max "
                                   "the most under load: min <= max"))
        for key in ("scale_up_after", "scale_down_after"):
            if key in w and not isinstance(processes, dict):
                out.append(src.problem(("workers", i, key), f"{key} applies only to `processes: {{min, max}}`",
                                       warning=True, hint="give processes as {min: 1, max: N} to scale by load"))
    return out


def _alias_checks(src: Source) -> list[Problem]:
    """An alias names one model only: not another model's name or alias (requests match names case-insensitively)."""
    out, taken = [], {}
    views = list(model_views(src))
    for v in views:
        taken.setdefault(default_name(v.get("model", kind=str) or "", v.get("model_alias", kind=str)).casefold(),
                         v.index)
    for v in views:
        aliases = v.data.get("aliases")
        for j, alias in enumerate(aliases if isinstance(aliases, list) else []):
            if not isinstance(alias, str):
                continue
            owner = taken.get(alias.casefold(), v.index)
            if owner != v.index:
                whose = "the model's" if owner is None else f"models[{owner}]'s"
                out.append(src.problem(v.locate(("aliases",)) + (j,), f"alias {alias!r} is already {whose} name or "
                                       "alias", hint="a name routes to one model: drop it here or there"))
            taken.setdefault(alias.casefold(), v.index)
    return out


def _key_checks(src: Source, d: dict) -> list[Problem]:
    """Each named key has its secret in exactly one place, and a name of its own."""
    out, seen = [], {}
    keys = get(d, "gateway", "keys")
    for i, k in enumerate(keys if isinstance(keys, list) else []):
        if not isinstance(k, dict):
            continue
        given = [w for w in ("key_env", "key_file") if w in k]
        if len(given) != 1:
            out.append(src.problem(("gateway", "keys", i), f"key {k.get('name', i)!r}: give its secret as key_env or "
                                   "key_file" + (", not both" if given else ""),
                                   hint="key_env: NAME_OF_A_VARIABLE, or key_file: path/to/file"))
        name = k.get("name")
        if isinstance(name, str):
            if name in seen:
                out.append(src.problem(("gateway", "keys", i, "name"), f"key name {name!r} is also keys[{seen[name]}]'s",
                                       hint="usage and limits are kept per name: give each key its own"))
            seen.setdefault(name, i)
    return out


def document_checks(src: Source) -> list[Problem]:
    d = src.data if isinstance(src.data, dict) else {}
    out: list[Problem] = []
    if "model" not in d and "models" not in d and "workers" not in d:
        out.append(src.problem((), "missing required key 'model'",
                               hint="the GGUF file to serve (or `models:` for several, or `workers:`)"))
    if "model" in d and "models" in d:
        out.append(src.problem(("models",), "give either `model` (one model) or `models` (several), not both",
                               hint="move the top-level model into the models list"))
    names: dict[str, tuple[int, str]] = {}  # case-folded: requests name models case-insensitively
    for v in model_views(src):
        out += _model_checks(v)
        if v.index is not None:
            name = default_name(v.get("model", kind=str) or "", v.get("model_alias", kind=str))
            first = names.get(name.casefold())
            if first and first[0] != v.index:
                same = "is also used by" if first[1] == name else f"differs only in case from {first[1]!r} of"
                out.append(v.problem(("model_alias",), f"model name {name!r} {same} models[{first[0]}]",
                                     hint="model names match case-insensitively: give each model its own "
                                          "model_alias"))
            names.setdefault(name.casefold(), (v.index, name))
        out += _capability_checks(v)
    out += _alias_checks(src)
    out += _worker_checks(src, d, {n for n in names} or {_top_name(d)})
    http_port = get(d, "port", kind=int) or 8080
    grpc_port = get(d, "gateway", "grpc_port", kind=int)
    if grpc_port is not None and grpc_port == http_port:
        out.append(src.problem(("gateway", "grpc_port"), "gateway.grpc_port is the gateway's HTTP port too",
                               value=grpc_port, hint="leave grpc_port out: the HTTP port answers gRPC as well; or "
                                                     "give gRPC a port of its own (Triton uses 8001)"))
    openai_port = get(d, "gateway", "openai_port", kind=int)
    if openai_port is not None and openai_port in (http_port, grpc_port):
        out.append(src.problem(("gateway", "openai_port"), "gateway.openai_port is already the gateway's "
                               f"{'HTTP' if openai_port == http_port else 'gRPC'} port", value=openai_port,
                               hint="give it a port of its own, or leave it out (`port` serves the OpenAI API too)"))
    out += _key_checks(src, d)
    host = get(d, "hostname", kind=str)
    keys = any(get(d, "gateway", k) for k in ("api_keys", "api_key_file", "api_key_env"))
    if host not in LOCAL_HOSTS and not keys:
        out.append(src.problem(("hostname",), f"the gateway will listen on {host} without API keys", warning=True,
                               hint="set gateway.api_key_file or gateway.api_key_env"))
    return out


def engine_device_count(v: ModelView, n_devices: int | None) -> int | None:
    """Devices one engine process spreads the model over (what tensor_split and main_gpu index)."""
    mode = v.get("parallel", "mode", kind=str) or "single"
    if v.get("devices", "backend", kind=str) in (None, "cpu"):
        return None
    if mode == "single":
        return 1
    if mode == "layer":
        return n_devices
    if mode == "replicas":
        per = v.get("parallel", "devices_per_replica", kind=int)
        reps = v.get("parallel", "replicas", kind=int) or 1
        return per or (n_devices // reps if n_devices else None)
    if mode == "rpc":
        return v.get("parallel", "ranks", kind=int)  # rank 0's device + one per other rank
    return None  # ep_tp: the fork lays out its own ranks


def ep_tp_device_checks(v: ModelView, n_devices: int, where: str) -> list[Problem]:
    """ep_tp runs one rank per NPU, as the guide's `mpirun -np N` (N = NPUs), unless devices_per_rank says more.
    Across hosts (a hostfile) devices.ids are each host's: the hostfile checks weigh those."""
    if v.get("parallel", "hostfile") is not None:
        return []
    ranks = v.get("parallel", "ranks", kind=int) or 1
    per = v.get("parallel", "devices_per_rank", kind=int)
    if ranks * (per or 1) == n_devices:
        return []
    if per is None:
        return [v.problem(("parallel", "ranks"), f"mode ep_tp runs one rank per NPU (the Ascend guide's `mpirun -np N`, "
                          f"N = the number of NPUs): ranks is {ranks} but the job has {n_devices} NPUs ({where})",
                          value=ranks,
                          hint=f"set parallel.ranks: {n_devices}, give the job {ranks} NPU(s) in devices.ids, or say "
                               "parallel.devices_per_rank explicitly")]
    return [v.problem(("parallel", "devices_per_rank"), f"ranks x devices_per_rank must equal the job's NPUs: "
                      f"{ranks} x {per} = {ranks * per}, but the job has {n_devices} NPUs ({where})", value=per)]


def _model_checks(v: ModelView) -> list[Problem]:
    out: list[Problem] = []
    d = v.data
    backend = v.get("devices", "backend", kind=str) or "cpu"
    flavor = v.get("engine", "flavor", kind=str) or "upstream"
    mode = v.get("parallel", "mode", kind=str) or "single"
    ids = v.get("devices", "ids", kind=list)
    split_mode = v.get("split_mode", kind=str)

    if backend == "cann" and split_mode in ("row", "tensor"):
        out.append(v.problem(("split_mode",), f"split_mode {split_mode!r} is not supported on CANN", value=split_mode,
                             hint="llama.cpp's CANN backend supports only none and layer: `row` needs a split "
                                  "buffer type CANN does not provide and `tensor` is unverified there; use layer"))
    if backend == "cpu" and ids is not None:
        out.append(v.problem(("devices", "ids"), "device ids mean nothing for backend cpu", value=ids,
                             hint="remove devices.ids, or set devices.backend to cann or cuda"))

    if flavor == "upstream":
        for key in annotated("x-fork-only"):
            if key in d:
                out.append(v.problem((key,), f"{key!r} is understood only by {FORK}", value=d[key],
                                     hint="set engine.flavor: ascend-fork with the fork's binary, or remove the key"))
    else:
        documented = set(annotated("x-fork-documented")) | set(annotated("x-fork-only"))
        for key in engine_keys():
            if key in d and key not in documented:
                out.append(v.problem((key,), f"{key!r} is not among the keys the Ascend fork's guide documents; it is "
                                     "written to the fork's YAML, which may ignore it", value=d[key], warning=True,
                                     hint="check the fork's own --help or source before relying on it"))
    if mode == "ep_tp" and flavor != "ascend-fork":
        out.append(v.problem(("parallel", "mode"), f"ep_tp (EP+TP) needs llama-mpi-server from {FORK}", value=mode,
                             hint="upstream llama.cpp has no expert/tensor parallel across ranks: use mode layer "
                                  "(one process, several devices) or rpc (ranks over llama.cpp RPC)"))
    out += _parallel_checks(v, mode, ids)

    count = engine_device_count(v, len(ids) if ids else None)
    ts = v.get("tensor_split", kind=list)
    if ts is not None and count is not None and len(ts) != count:
        out.append(v.problem(("tensor_split",), f"tensor_split has {len(ts)} entries but each engine uses "
                             f"{count} device(s)", value=ts, hint="give one share per device of one engine"))
    mg = v.get("main_gpu", kind=int)
    if mg is not None and count is not None and mg >= count:
        out.append(v.problem(("main_gpu",), f"main_gpu {mg} is out of range: each engine sees devices 0..{count - 1}",
                             value=mg, hint="main_gpu counts within the devices one engine sees, from 0"))
    if v.get("defrag_thold") is not None and flavor == "upstream":
        out.append(v.problem(("defrag_thold",), "defrag_thold is deprecated in upstream llama.cpp and ignored",
                             warning=True))
    return out


def _parallel_checks(v: ModelView, mode: str, ids: list | None) -> list[Problem]:
    out: list[Problem] = []
    par = v.get("parallel", kind=dict) or {}
    ranks = get(par, "ranks", kind=int)
    backend = v.get("devices", "backend", kind=str) or "cpu"
    if mode in ("rpc", "ep_tp"):
        if ranks is None or ranks < 2:
            out.append(v.problem(("parallel", "ranks") if ranks else ("parallel",),
                                 f"mode {mode} needs parallel.ranks >= 2 (the mpirun -np count)", value=ranks))
    else:
        for key in ("ranks", "hostfile"):
            if key in par:
                out.append(v.problem(("parallel", key), f"parallel.{key} is used only by modes rpc and ep_tp",
                                     value=par[key], hint=f"set parallel.mode to rpc or ep_tp, or remove {key}"))
    if mode != "ep_tp":
        for key in MPI_SIZES:
            if key in par:
                out.append(v.problem(("parallel", key), f"parallel.{key} is used only by mode ep_tp",
                                     value=par[key], hint="EP+TP runs with the Ascend fork's llama-mpi-server"))
    elif ranks and ranks >= 2:
        tp, dp = get(par, "tp_size", kind=int) or 1, get(par, "dp_size", kind=int) or 1
        ep, mtp = get(par, "ep_size", kind=int) or 1, get(par, "moe_tp_size", kind=int) or 1
        if tp * dp != ranks:
            out.append(v.problem(("parallel", "tp_size"), f"tp_size * dp_size must equal ranks "
                                 f"({tp} * {dp} = {tp * dp}, ranks = {ranks})",
                                 hint="the attention/dense part uses every rank once (vLLM/MindIE convention)"))
        if ep * mtp != ranks:
            out.append(v.problem(("parallel", "ep_size"), f"ep_size * moe_tp_size must equal ranks "
                                 f"({ep} * {mtp} = {ep * mtp}, ranks = {ranks})",
                                 hint="the expert part uses every rank once; 2 cards EP+TP: tp_size 2, ep_size 2"))
        if ids and backend != "cpu":
            out += ep_tp_device_checks(v, len(ids), "devices.ids")
    if mode == "replicas":
        reps = get(par, "replicas", kind=int) or 1
        per = get(par, "devices_per_replica", kind=int)
        if reps < 2:
            out.append(v.problem(("parallel", "replicas"), "mode replicas needs parallel.replicas >= 2", value=reps))
        if ids and backend != "cpu":
            need = reps * (per or 1)
            if per is None and len(ids) % reps:
                out.append(v.problem(("parallel", "replicas"), f"{len(ids)} devices do not divide into {reps} replicas",
                                     hint="set parallel.devices_per_replica or list a multiple of replicas"))
            elif need > len(ids):
                out.append(v.problem(("parallel", "devices_per_replica"), f"{reps} replicas x {per} devices need "
                                     f"{need} devices, devices.ids lists {len(ids)}"))
    elif "replicas" in par or "devices_per_replica" in par:
        key = "replicas" if "replicas" in par else "devices_per_replica"
        out.append(v.problem(("parallel", key), f"parallel.{key} is used only by mode replicas", value=par[key]))
    if mode == "single" and ids and len(ids) > 1 and backend != "cpu":
        out.append(v.problem(("devices", "ids"), f"mode single uses one device but {len(ids)} are listed",
                             value=ids, hint="use parallel.mode layer (split the model) or replicas (copies)"))
    if mode == "layer" and backend == "cpu":
        out.append(v.problem(("parallel", "mode"), "mode layer splits over accelerators; backend is cpu",
                             hint="use devices.backend cann or cuda, or mode single/replicas"))
    return out
