"""Validated config data -> frozen typed objects. Runs only on a document with no errors."""
from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from .inherit import model_views
from .model import EMBEDDED_PREFIX, Build, Config, Defaults, Devices, Engine, EngineParams, Gateway, ModelSpec, \
    Parallel, default_name
from .source import Source


def base_dir(src: Source) -> Path:
    """Relative paths in a config are relative to its file (to the working directory for text)."""
    return Path(src.file).resolve().parent if src.file and not src.file.startswith("<") else Path.cwd()


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


def to_config(src: Source) -> Config:
    d: dict = src.data
    base = base_dir(src)
    specs = tuple(_model_spec(v.data, base) for v in model_views(src))
    gw_raw = dict(d.get("gateway") or {})
    if gw_raw.get("api_key_file"):
        gw_raw["api_key_file"] = str((base / gw_raw["api_key_file"]).resolve())
    gateway = section(Gateway, gw_raw, **{k: v for k, v in (("host", d.get("hostname")), ("port", d.get("port")))
                                          if v is not None})
    models_dir = str((base / d["models_dir"]).resolve()) if d.get("models_dir") else None
    return Config(file=src.file, models=specs, gateway=gateway, build=section(Build, d.get("build")),
                  models_dir=models_dir)


def _model_spec(d: dict, base: Path) -> ModelSpec:
    model = d["model"]
    if not model.startswith(EMBEDDED_PREFIX):
        model = str((base / model).resolve())
    dev = d.get("devices") or {}
    ids = dev.get("ids")
    devices = Devices(dev.get("backend", "cpu"), tuple(ids) if isinstance(ids, list) else None)
    par_raw = dict(d.get("parallel") or {})
    if par_raw.get("hostfile"):
        par_raw["hostfile"] = str((base / par_raw["hostfile"]).resolve())
    eng_raw = dict(d.get("engine") or {})
    env = tuple((k, _env_str(v)) for k, v in (eng_raw.pop("env", None) or {}).items())
    defaults_raw = dict(d.get("defaults") or {})
    if isinstance(defaults_raw.get("stop"), str):
        defaults_raw["stop"] = [defaults_raw["stop"]]
    params = section(EngineParams, d)
    if isinstance(params.flash_attn, bool):  # YAML 1.1 reads a bare `on` as true
        params = replace(params, flash_attn="on" if params.flash_attn else "off")
    name = default_name(model, params.model_alias)
    return ModelSpec(name=name, model=model, params=params, devices=devices,
                     parallel=section(Parallel, par_raw), engine=section(Engine, eng_raw, env=env),
                     defaults=section(Defaults, defaults_raw), preload=d.get("preload", True), ttl=d.get("ttl"))


def _env_str(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
