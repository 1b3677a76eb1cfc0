"""Config: YAML file -> every problem at once, or typed frozen objects.

    config = load_config("configs/x.yaml")              # checks against this machine
    config = load_config(path, offline=True)             # skip model file / device checks
    config = load_config(path, assume=parse_assumed("cann:8"))

source (YAML + line numbers) -> schema -> document_checks -> machine_checks -> convert (typed objects)
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

from ..devices import DeviceSet, host_memory_mib, lookup
from ..errors import ConfigError
from .anyserve import from_anyserve, is_anyserve
from .convert import base_dir, to_config
from .document_checks import document_checks
from .env_defaults import apply_env_defaults
from .machine_checks import machine_checks
from .model import Config, ModelSpec
from .problems import Problem
from .schema import check as schema_check
from .source import Source, load_file, load_text

__all__ = ["load_config", "load_source", "validate_source", "Config", "ModelSpec", "Problem", "LoadResult", "Source"]


@dataclass(frozen=True)
class LoadResult:
    config: Config
    warnings: tuple[Problem, ...]


def load_config(path: str | Path, *, offline: bool = False, assume: DeviceSet | None = None,
                env: Mapping[str, str] | None = None) -> LoadResult:
    """A launcher config, or the anyserve llama.cpp worker's YAML (it has `model_path`), converted."""
    src = load_file(path, env)
    if is_anyserve(src):
        src = from_anyserve(src)
    return validate_source(src, offline=offline, assume=assume, env=env)


def load_source(text: str, file: str = "<string>", **kw) -> LoadResult:
    return validate_source(load_text(text, file, kw.get("env")), **kw)


def validate_source(src: Source, *, offline: bool = False, assume: DeviceSet | None = None,
                    env: Mapping[str, str] | None = None) -> LoadResult:
    problems = list(src.problems)
    origins = apply_env_defaults(src, os.environ if env is None else env)
    devices_for = lookup(assume, offline)
    if src.data is not None:
        if not isinstance(src.data, dict):
            problems.append(src.problem((), "the config must be a mapping of keys to values",
                                        value=type(src.data).__name__))
        else:
            problems += schema_check(src)
            problems += document_checks(src)
            problems += machine_checks(src, base_dir(src), devices_for, offline)
    _stop_on_errors(problems)
    config = replace(to_config(src), origins=tuple(origins))
    if not offline:  # last: it weighs the typed settings against the model's header and the devices' sizes
        from ..memory.checks import memory_problems  # memory plans use the planner, which imports config
        problems += memory_problems(src, config, devices_for, host_memory_mib())
        _stop_on_errors(problems)
    return LoadResult(config, tuple(p for p in problems if p.warning))


def _stop_on_errors(problems: list[Problem]) -> None:
    """Every problem at once (warnings too), errors first by place, if any is an error."""
    if any(not p.warning for p in problems):
        raise ConfigError(sorted(problems, key=lambda p: (p.warning, p.line, p.column)))
