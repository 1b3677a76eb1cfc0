"""Tier 1: the policy that starts and stops a worker's processes by load (gateway/scaling.py), with a clock
the test moves, and the config's checks of `processes: {min, max}`."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from launcher.config.model import WorkerSpec
from launcher.errors import ConfigError
from launcher.gateway.scaling import Idle, step
from launcher.supervise.states import ModelState
from launcher.validate import load_source

SPEC = WorkerSpec(name="w", app="m:app", processes=1, max_processes=3, scale_up_after=0.5, scale_down_after=10)


def up(in_flight=0, served=0):
    return SimpleNamespace(in_flight=in_flight, served=served)


def worker(*upstreams, scaling=False, state=ModelState.READY):
    return SimpleNamespace(spec=SPEC, upstreams=list(upstreams), scaling=scaling, state=state)


def test_a_process_starts_when_requests_wait_longer_than_the_target():
    w, idle = worker(up(in_flight=1)), Idle()
    assert step(w, 0.4, idle, 0.0) is None
    assert step(w, 0.6, idle, 0.0) == ("up", None)
    assert step(worker(up(1), up(1), up(1)), 5.0, idle, 0.0) is None          # max reached
    assert step(worker(up(1), scaling=True), 5.0, idle, 0.0) is None          # one change at a time
    assert step(worker(up(1), state=ModelState.RESTARTING), 5.0, idle, 0.0) is None


def test_an_idle_process_stops_after_the_grace_period_never_below_min():
    busy, quiet = up(in_flight=1, served=5), up(served=2)
    w, idle = worker(busy, quiet), Idle()
    assert step(w, 0.0, idle, 0.0) is None              # quiet is idle from now
    assert step(w, 0.0, idle, 9.9) is None
    assert step(w, 0.0, idle, 10.0) == ("down", quiet)
    assert step(w, 0.2, idle, 20.0) is None             # someone waits: keep it
    lone = worker(up())
    assert step(lone, 0.0, Idle(), 0.0) is None and step(lone, 0.0, Idle(), 100.0) is None   # at min


def test_a_request_served_in_between_resets_the_idle_clock():
    quiet, other = up(served=1), up(served=1)
    w, idle = worker(other, quiet), Idle()
    step(w, 0.0, idle, 0.0)
    quiet.served = 2                                    # took and finished a request between two looks
    assert step(w, 0.0, idle, 10.0) == ("down", other)
    assert idle.since(quiet, 10.0) == 10.0


def test_a_process_with_a_request_in_flight_is_never_stopped():
    a, b = up(in_flight=1), up(in_flight=1)
    idle = Idle()
    for now in (0.0, 50.0, 100.0):
        assert step(worker(a, b), 0.0, idle, now) is None


@pytest.mark.parametrize("processes, where, message", [
    ("{min: 3, max: 2}", "workers[0].processes.min", "above processes.max"),
    ("{min: 1, max: 0}", "workers[0].processes", ""),
    ("{min: 0, max: 2}", "workers[0].processes", ""),
])
def test_bad_ranges_are_config_errors_with_their_place(processes, where, message):
    with pytest.raises(ConfigError) as caught:
        load_source(f"workers:\n  - app: m:app\n    processes: {processes}\n", "w.yaml", offline=True)
    errors = [p.format() for p in caught.value.problems]
    assert any(where in e and message in e for e in errors), errors
    assert all("w.yaml:3:" in e for e in errors), errors  # the line of `processes`


def test_a_range_is_planned_with_ports_for_max_and_started_at_min(tmp_path):
    from launcher.plan import plan_for_here
    config = load_source("workers:\n  - app: m:app\n    processes: {min: 2, max: 4}\n", str(tmp_path / "w.yaml"),
                         offline=True).config
    assert (config.workers[0].processes, config.workers[0].max_processes) == (2, 4)
    plan = plan_for_here(config)
    assert len(plan.workers[0].processes) == 4 and "2 to 4 processes by load" in plan.workers[0].notes[0]
