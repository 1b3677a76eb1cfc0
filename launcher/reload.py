"""Config reload without a restart (SIGHUP, or `launch --config X --watch-config`), as llama-swap does it.

The file is validated again; with any problem the running config stays and the problems are reported (log,
`/api/events` `config`, the console). Otherwise only the difference is applied:

    added models        started (or left for their first request when `preload: false`)
    removed models      stopped
    changed models      restarted, only those whose engine settings changed (a change of request `defaults`,
                        `ttl` or `preload` applies in place, without a blip)
    unchanged models    untouched: their streams go on
    gateway keys, CORS  applied in place; `port`, `hostname` and `gateway.grpc_port` need a restart, so a
                        reload that changes them is refused with that reason

`diff` is pure (tested alone); `Reloader` applies a diff to the running deployment.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

from .config.model import Config, ModelSpec
from .errors import ConfigError, PlanError
from .supervise.events import Event, EventKind
from .validate import load_config

log = logging.getLogger("launcher")
NEEDS_RESTART = ("host", "port", "grpc_port", "openai_port")
IN_PLACE = ("api_keys", "api_key_file", "api_key_env", "keys", "admin_key_env", "cors_origins", "capture")


@dataclass
class Changes:
    added: list[ModelSpec] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[ModelSpec] = field(default_factory=list)
    in_place: list[ModelSpec] = field(default_factory=list)   # same engines, new defaults / ttl / preload
    gateway: list[str] = field(default_factory=list)           # gateway keys applied in place
    later: list[str] = field(default_factory=list)             # gateway keys that apply at the next start
    refused: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{what} {', '.join(names)}" for what, names in (
            ("added", [s.name for s in self.added]), ("removed", self.removed),
            ("restarted", [s.name for s in self.changed]), ("updated in place", [s.name for s in self.in_place]),
            ("gateway", self.gateway), ("at the next start", self.later)) if names]
        return "; ".join(parts) or "nothing changed"


def _engine_side(spec: ModelSpec) -> ModelSpec:
    """What the engines are started from: a spec without the gateway-side settings."""
    return dataclasses.replace(spec, defaults=None, ttl=None, preload=True, served_aliases=(), set_params=(),
                               strip_params=())


def diff(old: Config, new: Config) -> Changes:
    changes = Changes()
    for key in NEEDS_RESTART:
        before, after = getattr(old.gateway, key), getattr(new.gateway, key)
        if before != after:
            changes.refused.append(f"gateway {key} {before} -> {after}: the listening socket changes only with a "
                                   "restart")
    for f in dataclasses.fields(old.gateway):
        if f.name not in NEEDS_RESTART and getattr(old.gateway, f.name) != getattr(new.gateway, f.name):
            (changes.gateway if f.name in IN_PLACE else changes.later).append(f.name)
    before = {s.name: s for s in old.models}
    after = {s.name: s for s in new.models}
    changes.added = [s for name, s in after.items() if name not in before]
    changes.removed = [name for name in before if name not in after]
    for name, spec in after.items():
        if name in before and spec != before[name]:
            if _engine_side(spec) != _engine_side(before[name]):
                changes.changed.append(spec)
            else:
                changes.in_place.append(spec)
    if old.workers != new.workers:
        changes.later.append("workers")
    return changes


class Reloader:
    """Re-reads `path` and applies the difference to the running deployment. One reload at a time."""

    def __init__(self, path: str, config: Config, deployment, pool, plan_models, apply_gateway):
        self.path, self.config = path, config
        self.deployment, self.pool = deployment, pool
        self.plan_models = plan_models        # Config -> {name: ModelPlan} (planned on this machine)
        self.apply_gateway = apply_gateway    # Gateway -> None: keys and CORS in place
        self._lock = asyncio.Lock()

    async def reload(self) -> Changes | None:
        async with self._lock:
            try:
                new = (await asyncio.to_thread(load_config, self.path)).config
            except ConfigError as exc:
                problems = [p.format() for p in exc.problems if not p.warning]
                log.error("config %s not reloaded, the running config stays: %d problem(s)\n  %s", self.path,
                          len(problems), "\n  ".join(problems))
                self._report(False, "", problems)
                return None
            changes = diff(self.config, new)
            if changes.refused:
                log.error("config %s not reloaded: %s", self.path, "; ".join(changes.refused))
                self._report(False, "", changes.refused)
                return changes
            try:   # planned before anything changes: a plan that fails leaves everything as it was
                plans = self.plan_models(new) if changes.added or changes.changed else {}
            except PlanError as exc:
                log.error("config %s not reloaded: %s", self.path, exc)
                self._report(False, "", [str(exc)])
                return changes
            await self._apply(new, changes, plans)
            self.config = new
            log.info("config %s reloaded: %s", self.path, changes.summary())
            self._report(True, changes.summary(), [])
            return changes

    async def _apply(self, new: Config, changes: Changes, plans: dict) -> None:
        if changes.gateway:
            self.apply_gateway(new.gateway)
        for spec in changes.in_place:
            runner = self.deployment.find(spec.name)
            runner.spec = spec  # defaults, ttl, preload, parameter rules: read per request and by the pool
            if runner.plan.aliases != spec.aliases:   # `aliases:` changed: the names requests may use
                runner.plan = dataclasses.replace(runner.plan, aliases=spec.aliases)
                self.deployment.reindex()
        stopping = []
        for name in changes.removed + [s.name for s in changes.changed]:
            runner = self.deployment.find(name)
            self.deployment.detach(runner)
            stopping.append(runner.stop())
        await asyncio.gather(*stopping)
        starting = []
        for spec in changes.changed + changes.added:
            runner = self.deployment.add(plans[spec.name], spec)
            if spec.preload:
                runner.mark_starting()
                starting.append(self.pool.ensure_loaded(runner))
        results = await asyncio.gather(*starting, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.error("after the reload: %s", result)

    def _report(self, ok: bool, summary: str, problems: list[str]) -> None:
        self.deployment.events.emit(Event(EventKind.CONFIG, "", None, summary if ok else "; ".join(problems),
                                          data={"ok": ok, "file": str(Path(self.path)), "summary": summary,
                                                "problems": problems}))


async def watch(path: str, reload, every: float = 1.0) -> None:
    """Reload when the file's content changes (polled: no inotify dependency; editors replace files)."""
    def read() -> bytes | None:
        try:
            return Path(path).read_bytes()
        except OSError:
            return None
    last = read()
    while True:
        await asyncio.sleep(every)
        now = read()
        if now is not None and now != last:
            last = now
            await reload()
