"""Validated config data -> frozen typed objects. Runs only on a document with no errors."""
from __future__ import annotations

import os
from dataclasses import MISSING, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from ..units import size_mib
from .hostfile import parse_hostfile
from .inherit import model_views
from .model import (
    EMBEDDED_PREFIX,
    WORKER_ENGINE,
    Build,
    Config,
    Defaults,
    Devices,
    Engine,
    EngineParams,
    Gateway,
    Hccl,
    ModelSpec,
    NamedKey,
    Parallel,
    WorkerSpec,
    default_name,
    default_worker_name,
)
from .source import Source


def base_dir(src: Source) -> Path:
    """Relative paths in a config are relative to its file (to the working directory for text)."""
    return Path(src.file).resolve().parent if src.file and not src.file.startswith("<") else Path.cwd()


def lexical(path: Path) -> str:
    """Absolute and normalised, links not followed: a model linked into a folder keeps its own name
    (Hugging Face caches link `model.gguf` to a blob named by its hash)."""
    return os.path.normpath(path)


def section(cls, raw: Any, **override):
    """A frozen section from its mapping: lists become tuples, absent keys keep their defaults."""
    raw = dict(raw or {})
    kwargs = {}
    for f in fields(cls):
        if f.name in raw:
            value = raw[f.name]
            kwargs[f.name] = tuple(value) if isinstance(value, list) else value
    kwargs.update(override)
    return cls(**kwargs)


def top_level_gateway(d: dict) -> dict:
    """The gateway address given by the Llama Switch names at the top level (`hostname`, `port`): they win
    over `gateway.host` / `gateway.port`."""
    return {k: v for k, v in (("host", d.get("hostname")), ("port", d.get("port"))) if v is not None}


def gateway_port(d: dict) -> int:
    """The gateway's port as a raw config gives it, default included."""
    port = top_level_gateway(d).get("port", (d.get("gateway") or {}).get("port"))
    return port if isinstance(port, int) else Gateway.port


def to_config(src: Source) -> Config:
    d: dict = src.data
    base = base_dir(src)
    specs = tuple(_model_spec(v.data, base) for v in model_views(src))
    gw_raw = dict(d.get("gateway") or {})
    if isinstance(gw_raw.get("capture"), dict):
        gw_raw["capture"] = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in gw_raw["capture"].items())
    for path_key in ("api_key_file", "usage_db"):
        if gw_raw.get(path_key):
            gw_raw[path_key] = str((base / gw_raw[path_key]).resolve())
    gw_raw["keys"] = [NamedKey(**{**k, "models": tuple(k.get("models") or ("*",))}
                                | ({"key_file": str((base / k["key_file"]).resolve())} if k.get("key_file") else {}))
                       for k in gw_raw.get("keys") or ()]
    gateway = section(Gateway, gw_raw, **top_level_gateway(d))
    models_dir = lexical(base / d["models_dir"]) if d.get("models_dir") else None
    workers = tuple(_worker_spec(w, base) for w in d.get("workers") or ())
    return Config(file=src.file, models=specs, gateway=gateway, build=section(Build, d.get("build")),
                  models_dir=models_dir, workers=workers)


def _worker_spec(d: dict, base: Path) -> WorkerSpec:
    paths = d.get("path", ".")
    paths = [paths] if isinstance(paths, str) else paths
    dev = d.get("devices") or {}
    ids = dev.get("ids")
    engine = section(Engine, {k: d[k] for k in ("start_timeout", "max_restarts", "restart_backoff") if k in d},
                     kind=WORKER_ENGINE.kind)
    processes = d.get("processes", 1)
    low, high = (processes.get("min", 1), processes["max"]) if isinstance(processes, dict) else (processes, processes)
    scaling = {k: d[k] for k in ("scale_up_after", "scale_down_after") if k in d}
    return WorkerSpec(name=d.get("name") or default_worker_name(d["app"]), app=d["app"],
                      factory=d.get("factory", False), processes=low, max_processes=high, threads=d.get("threads", 4),
                      **scaling,
                      path=tuple(lexical(base / p) for p in paths),
                      env=tuple((k, _env_str(v)) for k, v in (d.get("env") or {}).items()),
                      devices=Devices(dev.get("backend", "cpu"), tuple(ids) if isinstance(ids, list) else None),
                      engine=engine)


def _model_spec(d: dict, base: Path) -> ModelSpec:
    model = d["model"]
    if not model.startswith(EMBEDDED_PREFIX):
        model = lexical(base / model)
    dev = d.get("devices") or {}
    ids = dev.get("ids")
    devices = Devices(dev.get("backend", "cpu"), tuple(ids) if isinstance(ids, list) else None,
                      size_mib(dev["memory"]) if dev.get("memory") is not None else None, auto=ids == "auto",
                      every=ids == "all")
    par_raw = dict(d.get("parallel") or {})
    if par_raw.get("hostfile"):
        par_raw["hostfile"] = str((base / par_raw["hostfile"]).resolve())
        par_raw["hosts"] = _hosts(Path(par_raw["hostfile"]))
    if par_raw.get("hccl") is not None:
        par_raw["hccl"] = _hccl(par_raw["hccl"])
    eng_raw = dict(d.get("engine") or {})
    env = tuple((k, _env_str(v)) for k, v in (eng_raw.pop("env", None) or {}).items())
    defaults_raw = dict(d.get("defaults") or {})
    if isinstance(defaults_raw.get("stop"), str):
        defaults_raw["stop"] = [defaults_raw["stop"]]
    params = section(EngineParams, d)
    if isinstance(params.flash_attn, bool):  # YAML 1.1 reads a bare `on` as true
        params = replace(params, flash_attn="on" if params.flash_attn else "off")
    name = default_name(model, params.model_alias)
    capabilities = tuple(tuple(c.items()) for c in d.get("capabilities") or ())
    return ModelSpec(name=name, model=model, params=params, devices=devices,
                     parallel=section(Parallel, par_raw), engine=section(Engine, eng_raw, env=env),
                     defaults=section(Defaults, defaults_raw), preload=d.get("preload", True), ttl=d.get("ttl"),
                     extra_capabilities=capabilities, served_aliases=tuple(d.get("aliases") or ()),
                     set_params=tuple((d.get("set_params") or {}).items()),
                     strip_params=tuple(d.get("strip_params") or ()))


def _hosts(path: Path) -> tuple[tuple[str, int], ...]:
    """The hostfile's hosts and slots (empty when it is not readable here: --offline on another machine)."""
    try:
        hostfile = parse_hostfile(path.read_text())
    except (OSError, UnicodeDecodeError):
        return ()
    return tuple((h, hostfile.slots(h)) for h in hostfile.hosts)


def _hccl(raw: dict) -> Hccl:
    ips = raw.get("device_ips")
    table = tuple((str(h), tuple(a)) for h, a in ips.items()) if isinstance(ips, dict) else \
        ((("", tuple(ips)),) if ips else ())
    return section(Hccl, {k: v for k, v in raw.items() if k != "device_ips"}, device_ips=table)


def _env_str(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


# Fields launcher fills in, never written in a config: hosts (read from the hostfile), chosen_by (the machine's).
DERIVED = ("hosts", "chosen_by")


def section_data(section) -> dict:
    """A frozen section back in its YAML form, with only the keys that differ from their defaults
    (what a switched model inherits must read as if the user had written it)."""
    out = {}
    for f in fields(section):
        value = getattr(section, f.name)
        default = f.default if f.default is not MISSING else None
        if value == default or f.name in DERIVED:
            continue
        if f.name == "env":
            value = dict(value)
        elif f.name == "device_ips":
            value = dict(value) if any(host for host, _ in value) else list(value[0][1])
        elif is_dataclass(value):
            value = section_data(value)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def inherited_sections(spec: ModelSpec) -> dict:
    """The devices, parallel layout and engine of a model, as config sections."""
    return {name: data for name, data in (("devices", section_data(spec.devices)),
                                          ("parallel", section_data(spec.parallel)),
                                          ("engine", section_data(spec.engine))) if data}
