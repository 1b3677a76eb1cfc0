"""Validate: a config file -> every problem at once (document, engine kinds, machine, memory), or typed
frozen objects.

    config = load_config("configs/x.yaml")              # checks against this machine
    config = load_config(path, offline=True)             # skip model file / device checks
    config = load_config(path, assume=parse_assumed("cann:8"))

source (YAML + line numbers) -> schema -> document checks -> engine kinds' checks -> machine checks
-> convert (typed objects) -> memory checks (the typed settings against the model's header and the devices)

The config package alone reads and converts a document; this step adds what needs the engine kinds,
the machine and the memory plan, which all sit above config.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

from ..config.convert import base_dir, to_config
from ..config.document_checks import document_checks
from ..config.dotenv_file import DotEnvMissing
from ..config.env_defaults import apply_env_defaults
from ..config.inherit import model_views
from ..config.model import Config, ModelSpec
from ..config.problems import Problem
from ..config.schema import check as schema_check
from ..config.source import Source, load_file, load_text
from ..devices import DeviceSet, host_memory_mib, lookup, machine_backend
from ..engines import LlamaServer, kind_named, kind_names
from ..errors import ConfigError
from .anyserve import from_anyserve, is_anyserve
from .chat_template import with_chat_template
from .guide import apply_machine_defaults
from .machine import machine_checks
from .memory import memory_problems

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
    try:
        origins = apply_env_defaults(src, os.environ if env is None else env)
    except DotEnvMissing as exc:
        raise ConfigError(problems + [exc.problem()]) from None
    devices_for = lookup(assume, offline)
    decided: dict = {}
    if src.data is not None:
        if not isinstance(src.data, dict):
            problems.append(src.problem((), "the config must be a mapping of keys to values",
                                        value=type(src.data).__name__))
        else:
            found, decided = apply_machine_defaults(src, machine_backend(assume, offline, env), devices_for)
            problems += found
            problems += schema_check(src, kind_names())
            problems += document_checks(src)
            problems += engine_checks(src)
            problems += machine_checks(src, base_dir(src), devices_for, offline)
    _stop_on_errors(problems)
    config = with_machine_notes(replace(to_config(src), origins=tuple(origins)), decided)
    if not offline:
        config, unknown = with_chat_templates(config)
        problems += [view.problem(("model",), note, warning=True, hint="set chat_template (a llama-server built-in "
                                  "name, or a Jinja template with jinja: true)")
                     for view, note in zip(model_views(src), unknown) if note]
    if not offline:  # last: it weighs the typed settings against the model's header and the devices' sizes
        problems += memory_problems(src, config, devices_for, host_memory_mib())
        _stop_on_errors(problems)
    return LoadResult(config, tuple(p for p in problems if p.warning))


def with_chat_templates(config: Config) -> tuple[Config, list[str | None]]:
    """Models whose GGUF has no chat template get their architecture's built-in one (chat_template.py), said in
    their plan notes; and, per model, the warning when launcher knows none (llama-server then uses ChatML)."""
    models, unknown = [], []
    for spec in config.models:
        spec, note = with_chat_template(spec)
        known = note is not None and spec.params.chat_template is not None
        models.append(replace(spec, machine_notes=spec.machine_notes + (note,)) if known else spec)
        unknown.append(note if note and not known else None)
    return replace(config, models=tuple(models)), unknown


def with_machine_notes(config: Config, decided: dict) -> Config:
    """The typed models with what the machine decided for them (guide.py)."""
    models = tuple(replace(m, devices=replace(m.devices, chosen_by=decided[i].backend_reason),
                           machine_notes=decided[i].notes) if i in decided else m
                   for i, m in enumerate(config.models))
    return replace(config, models=models)


def engine_checks(src: Source) -> list[Problem]:
    """What each model's engine kind has to say about its section (kinds the schema refused are skipped)."""
    out: list[Problem] = []
    for view in model_views(src):
        name = view.get("engine", "kind", kind=str) or LlamaServer.name
        if name in kind_names():
            out += kind_named(name).document_problems(view, view.get("engine", "flavor", kind=str) or "upstream",
                                                      view.get("parallel", "mode", kind=str) or "single")
    return out


def _stop_on_errors(problems: list[Problem]) -> None:
    """Every problem at once (warnings too), errors first by place, if any is an error."""
    if any(not p.warning for p in problems):
        raise ConfigError(sorted(problems, key=lambda p: (p.warning, p.line, p.column)))
