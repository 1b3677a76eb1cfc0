"""Config: YAML file -> every problem at once, or typed frozen objects.

    config = load_config("configs/x.yaml")              # checks against this machine
    config = load_config(path, offline=True)             # skip model file / device checks
    config = load_config(path, assume=parse_assumed("cann:8"))
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

from ..devices import DeviceSet, lookup
from ..errors import ConfigError
from .checks import config_checks, machine_checks, views
from .model import (EMBEDDED_PREFIX, Build, Config, Defaults, Devices, Engine, EngineParams, Gateway,
                    ModelSpec, Parallel, default_name)
from .problems import Problem
from .schema import check as schema_check
from .source import Source, load_file, load_text

__all__ = ["load_config", "load_source", "validate_source", "Config", "ModelSpec", "Problem", "LoadResult"]


@dataclass(frozen=True)
class LoadResult:
    config: Config
    warnings: tuple[Problem, ...]


def load_config(path: str | Path, *, offline: bool = False, assume: DeviceSet | None = None,
                env: Mapping[str, str] | None = None) -> LoadResult:
    return validate_source(load_file(path, env), offline=offline, assume=assume)


def load_source(text: str, file: str = "<string>", **kw) -> LoadResult:
    return validate_source(load_text(text, file, kw.pop("env", None)), **kw)


def validate_source(src: Source, *, offline: bool = False, assume: DeviceSet | None = None) -> LoadResult:
    problems = list(src.problems)
    if src.data is not None:
        if not isinstance(src.data, dict):
            problems.append(src.problem((), "the config must be a mapping of keys to values",
                                        value=type(src.data).__name__))
        else:
            problems += schema_check(src)
            problems += config_checks(src)
            problems += machine_checks(src, _base_dir(src), lookup(assume, offline), offline)
    errors = [p for p in problems if not p.warning]
    if errors:
        raise ConfigError(sorted(problems, key=lambda p: (p.warning, p.line, p.column)))
    return LoadResult(to_config(src), tuple(p for p in problems if p.warning))


def _base_dir(src: Source) -> Path:
    return Path(src.file).resolve().parent if src.file and not src.file.startswith("<") else Path.cwd()


def _section(cls, raw: Any, **override):
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
    base = _base_dir(src)
    specs = tuple(_model_spec(v.data, base) for v in views(src))
    gw_raw = dict(d.get("gateway") or {})
    if gw_raw.get("api_key_file"):
        gw_raw["api_key_file"] = str((base / gw_raw["api_key_file"]).resolve())
    gateway = _section(Gateway, gw_raw, **{k: v for k, v in (("host", d.get("hostname")), ("port", d.get("port")))
                                           if v is not None})
    models_dir = str((base / d["models_dir"]).resolve()) if d.get("models_dir") else None
    return Config(file=src.file, models=specs, gateway=gateway, build=_section(Build, d.get("build")),
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
    params = _section(EngineParams, d)
    if isinstance(params.flash_attn, bool):  # YAML 1.1 reads a bare `on` as true
        params = replace(params, flash_attn="on" if params.flash_attn else "off")
    name = default_name(model, params.model_alias)
    return ModelSpec(name=name, model=model, params=params, devices=devices,
                     parallel=_section(Parallel, par_raw), engine=_section(Engine, eng_raw, env=env),
                     defaults=_section(Defaults, defaults_raw), preload=d.get("preload", True), ttl=d.get("ttl"))


def _env_str(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
