"""Usage per key name × model × hour (requests, prompt and completion tokens as the engine reported them,
errors), kept in an embedded SQLite file so it survives restarts.

The request path only adds to a dict in memory (`record`); a background task writes what gathered every
`flush_every` seconds, in a thread, one transaction per batch (an upsert per row). So a crash loses at most
the last batch, and a request never waits for the disk. A file that is corrupt or locked by another process
is an error at start naming the path: counts are never silently reset.
"""
from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from datetime import datetime
from pathlib import Path

from ..errors import BadRequest, LauncherError

log = logging.getLogger("launcher.usage")
FIELDS = ("requests", "prompt_tokens", "completion_tokens", "errors")
SCHEMA = """CREATE TABLE IF NOT EXISTS usage (
    hour INTEGER NOT NULL, key TEXT NOT NULL, model TEXT NOT NULL,
    requests INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
    errors INTEGER NOT NULL, PRIMARY KEY (hour, key, model))"""
UPSERT = """INSERT INTO usage VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (hour, key, model) DO UPDATE SET
    requests = requests + excluded.requests, prompt_tokens = prompt_tokens + excluded.prompt_tokens,
    completion_tokens = completion_tokens + excluded.completion_tokens, errors = errors + excluded.errors"""


class UsageStore:
    def __init__(self, path: str | Path | None, flush_every: float = 2.0, clock=time.time, check: bool = True):
        """`path` None: counted in memory only (tests). `check` False: only read (`launch usage`, while the
        gateway may be writing)."""
        self.path = Path(path) if path else None
        self.flush_every, self.clock = flush_every, clock
        self.pending: dict[tuple[int, str, str], list[int]] = {}
        self._task: asyncio.Task | None = None
        if self.path is not None and check:
            self._check()

    # --- the request path --------------------------------------------------------------------------
    def record(self, key: str, model: str, status: int, prompt: int, completion: int) -> None:
        row = self.pending.setdefault((int(self.clock()) // 3600 * 3600, key, model), [0, 0, 0, 0])
        row[0] += 1
        row[1] += prompt
        row[2] += completion
        row[3] += status >= 400

    # --- the disk ----------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=5.0, isolation_level=None)

    def _check(self) -> None:
        """Open (or create) the file now: corrupt or locked is an error naming it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._connect() as db:
                db.execute("PRAGMA busy_timeout = 2000")  # a writer's brief lock is waited for, a held one is not
                ok = db.execute("PRAGMA quick_check").fetchone()[0]
                if ok != "ok":
                    raise LauncherError(f"the usage database {self.path} is corrupt ({ok}): move it away to start "
                                        "a new one, or set gateway.usage_db")
                db.execute("BEGIN IMMEDIATE")   # fails when another process keeps holding it
                db.execute(SCHEMA)
                db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise LauncherError(f"the usage database {self.path} cannot be used: {exc} (another launch writing "
                                "it, or not an SQLite file): stop the other one, move the file away, or set "
                                "gateway.usage_db") from exc

    def flush(self) -> int:
        """Write what gathered (blocking: called in a thread, and once at the end). Returns rows written."""
        batch, self.pending = self.pending, {}
        if not batch or self.path is None:
            if self.path is None:   # memory only: keep counting
                for k, v in batch.items():
                    self.pending[k] = v
            return 0
        with self._connect() as db:
            db.execute("BEGIN")
            db.executemany(UPSERT, [(*k, *v) for k, v in batch.items()])
            db.execute("COMMIT")
        return len(batch)

    def start(self) -> None:
        if self.path is not None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_every)
            try:
                await asyncio.to_thread(self.flush)
            except sqlite3.Error as exc:   # the disk went away: say so, keep counting in memory
                log.error("writing usage to %s failed: %s", self.path, exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self.path is not None:
            self.flush()

    # --- reading -----------------------------------------------------------------------------------
    def rows(self, since: float = 0, key: str | None = None, model: str | None = None) -> list[dict]:
        """Hour rows from `since` on (the written ones plus what is not written yet), oldest first."""
        totals: dict[tuple[int, str, str], list[int]] = {}
        if self.path is not None and self.path.exists():
            with self._connect() as db:
                for hour, k, m, *values in db.execute("SELECT * FROM usage WHERE hour >= ?",
                                                      (int(since) // 3600 * 3600,)):
                    totals[(hour, k, m)] = list(values)
        for k, values in self.pending.items():
            if k[0] >= int(since) // 3600 * 3600:
                totals[k] = [a + b for a, b in zip(totals.get(k, [0, 0, 0, 0]), values)]
        return [{"hour": time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(h)), "key": k, "model": m,
                 **dict(zip(FIELDS, v))}
                for (h, k, m), v in sorted(totals.items())
                if (key is None or k == key) and (model is None or m == model)]


def default_path(config_file: str, cache: Path) -> Path:
    return cache / "usage" / f"{Path(config_file).stem}.sqlite"


def parse_since(since: str | None) -> float:
    """Epoch seconds from `24h` / `7d` (that long ago), an ISO time or epoch seconds; none: a day ago."""
    if not since:
        return time.time() - 86400
    if since[:-1].isdigit() and since[-1] in "hd":
        return time.time() - int(since[:-1]) * (3600 if since[-1] == "h" else 86400)
    try:
        return float(since)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(since.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise BadRequest(f"since={since!r}: give 24h, 7d, an ISO time (2026-12-04T10:00Z) or epoch seconds",
                         param="since") from None
