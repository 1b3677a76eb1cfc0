"""Tier 2: faults under load through real `launch` processes (short forms of `launch bench chaos`), over
the fast fake engine so that the gateway's behaviour, not generation, is what is measured: engines
SIGKILLed during mixed OpenAI/KServe traffic, SIGTERM in the middle of a load, a soak."""
from __future__ import annotations

import asyncio

import pytest

from launcher.bench import chaos


@pytest.fixture
def started(tmp_path, gemma):
    runs = []

    def start(replicas: int = 1, delay: float = 0.02):
        run = chaos.start(tmp_path, replicas, gemma=False, delay=delay)
        runs.append(run)
        return run
    yield start
    for run in runs:
        run.stop()
        left = run.leftovers()
        run.kill_leftovers()
        assert left == [], f"processes outlived launch: {left}"


def measured(run, requests: int, concurrency: int, kill_every: float) -> chaos.Report:
    asyncio.run(chaos.load(run.url, "gemma", 2 * concurrency, concurrency))  # warm-up
    before = chaos.settle(run.proc.pid, run.url, concurrency)
    report = asyncio.run(chaos.chaos_run(run.url, "gemma", requests, concurrency, kill_every))
    report.before, report.after = before, chaos.settle(run.proc.pid, run.url, concurrency)
    return report


def assert_back_to_baseline(report: chaos.Report) -> None:
    assert report.after.rss_mib - report.before.rss_mib < 16, report.summary()
    assert report.after.fds <= report.before.fds + 4, report.summary()


def test_engine_killed_under_load_every_request_completes_or_fails_cleanly(started):
    report = measured(started(), requests=80, concurrency=6, kill_every=1.5)
    summary = report.summary()
    assert report.kills >= 2 and summary.get("bad", 0) == 0, summary
    assert summary["ok"] >= 40, summary
    assert_back_to_baseline(report)


def test_with_two_replicas_requests_go_to_the_survivor(started):
    report = measured(started(replicas=2), requests=80, concurrency=6, kill_every=1.5)
    summary = report.summary()
    assert report.kills >= 2 and summary.get("bad", 0) == 0, summary
    # only requests already running on a killed replica fail; nothing new is refused
    assert summary.get("refused", 0) == 0 and all(o.detail in ("error event", "503 in flight on a killed engine")
                                                  for o in report.outcomes if o.result == "error"), summary
    assert_back_to_baseline(report)


def test_sigterm_drains_with_nothing_in_flight_lost(started):
    run = started(delay=0.05)
    report, code, in_flight = chaos.drain_run(run, requests=40, concurrency=8, sigterm_after=1.0)
    summary = report.summary()
    assert code == 0, run.log_tail()
    assert summary.get("bad", 0) == 0 and summary["ok"] >= 8, summary   # the first wave finished whole
    assert in_flight["running_at_sigterm"] >= 1 and in_flight["sent_before_sigterm_not_ok"] == 0, in_flight
    refusals = [o.detail for o in report.outcomes if o.result == "refused"]
    assert any("503" in d for d in refusals) and all("503" in d or "stopped listening" in d for d in refusals), \
        summary
    assert "drained in" in run.log_tail(20000)


def test_soak_does_not_grow(started):
    run = started(delay=0.0)
    asyncio.run(chaos.load(run.url, "gemma", 400, 16))  # warm-up: pools and caches reach their size
    before = chaos.settle(run.proc.pid, run.url, 16)
    outcomes = asyncio.run(chaos.load(run.url, "gemma", 1500, 16))
    after = chaos.settle(run.proc.pid, run.url, 16)
    assert [o.result for o in outcomes].count("ok") == 1500
    assert after.rss_mib - before.rss_mib < 8 and after.fds <= before.fds + 2, (before, after)
