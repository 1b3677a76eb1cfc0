"""Tier 1: usage per key × model × hour in SQLite: batched writes, what a crash loses, a corrupt or locked file,
the API and `launch usage`."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from launcher.errors import LauncherError
from launcher.gateway.usage import UsageStore, parse_since
from tests.fakes.harness import gateway

HOUR = 1_764_000_000 // 3600 * 3600


class Clock:
    now = HOUR + 10.0

    def __call__(self):
        return self.now


def test_counts_are_batched_and_a_crash_loses_only_the_unwritten_batch(tmp_path):
    db, clock = tmp_path / "usage.sqlite", Clock()
    store = UsageStore(db, clock=clock)
    store.record("alice", "gemma", 200, 12, 30)
    store.record("alice", "gemma", 500, 0, 0)
    assert sqlite3.connect(db).execute("SELECT count(*) FROM usage").fetchone()[0] == 0   # nothing on disk yet
    assert store.flush() == 1
    store.record("alice", "gemma", 200, 5, 5)   # counted, not written: then the process is killed
    clock.now += 3600
    store.record("bob", "qwen", 200, 1, 2)
    del store
    again = UsageStore(db, clock=clock)
    assert again.rows(since=0) == [{"hour": "2025-11-24T16:00:00Z", "key": "alice", "model": "gemma", "requests": 2,
                                    "prompt_tokens": 12, "completion_tokens": 30, "errors": 1}]
    clock.now = HOUR + 20   # the same hour as the written row
    again.record("alice", "gemma", 200, 1, 1)
    again.flush()
    assert [r["requests"] for r in again.rows(since=0, key="alice")] == [3]   # added to the written row


def test_a_corrupt_or_locked_file_is_an_error_naming_it(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LauncherError, match=f"{bad}.*cannot be used"):
        UsageStore(bad)
    held = tmp_path / "held.sqlite"
    UsageStore(held)
    other = sqlite3.connect(held, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(LauncherError, match=f"{held}.*locked"):
            UsageStore(held)
    finally:
        other.execute("ROLLBACK")
    assert UsageStore(held, check=False).rows(0) == []   # reading does not need the lock


def test_since_reads_iso_and_epoch():
    assert parse_since("2026-12-04T10:00:00Z") == 1796378400.0 and parse_since("12") == 12.0
    assert abs(parse_since("7d") - (time.time() - 7 * 86400)) < 60 and abs(parse_since("24h") - parse_since(None)) < 60
    with pytest.raises(Exception, match="ISO time"):
        parse_since("yesterday")


KEYS = """model: fake.gguf
model_alias: fake
engine: {max_restarts: 3, restart_backoff: 0.1, start_timeout: 20}
gateway:
  usage_db: usage.sqlite
  admin_key_env: USAGE_ADMIN
  keys:
    - {name: alice, key_env: ALICE_KEY}
    - {name: bob, key_env: BOB_KEY}
"""


def test_the_api_and_launch_usage_show_each_keys_tokens(tmp_path, monkeypatch):
    for name, value in (("ALICE_KEY", "a-1"), ("BOB_KEY", "b-1"), ("USAGE_ADMIN", "adm")):
        monkeypatch.setenv(name, value)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(KEYS)
    store = UsageStore(tmp_path / "usage.sqlite")
    with gateway(tmp_path, ["--tokens", "3"], text=KEYS, usage=store) as gw:
        for key, n in (("a-1", 2), ("b-1", 1)):
            for _ in range(n):
                r = httpx.post(gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                               json={"messages": [{"role": "user", "content": "hi"}], "stream": True}, timeout=30)
                assert r.status_code == 200
        rows = httpx.get(gw.url + "/api/v1/usage", headers={"Authorization": "Bearer adm"}).json()["data"]
        by_key = {r["key"]: r for r in rows}
        assert (by_key["alice"]["requests"], by_key["alice"]["completion_tokens"], by_key["alice"]["prompt_tokens"]) \
            == (2, 6, 6)
        assert by_key["bob"]["requests"] == 1
        assert httpx.get(gw.url + "/api/v1/usage", headers={"Authorization": "Bearer a-1"}).status_code == 401
    out = subprocess.run([sys.executable, "-m", "launcher", "usage", "--config", str(cfg), "--format", "json"],
                         capture_output=True, text=True, check=True).stdout   # written when the gateway stopped
    assert {r["key"]: r["completion_tokens"] for r in json.loads(out)} == {"alice": 6, "bob": 3}
    csv = subprocess.run([sys.executable, "-m", "launcher", "usage", "--config", str(cfg), "--format", "csv",
                          "--key", "bob"], capture_output=True, text=True, check=True).stdout.splitlines()
    assert csv[0] == "hour,key,model,requests,prompt_tokens,completion_tokens,errors" and len(csv) == 2
