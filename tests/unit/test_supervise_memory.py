"""Tier 1: supervision and routing logic against in-memory processes: replica picking, restart
backoff, the restart limit, and eviction. Nothing is spawned; time does not pass."""
import asyncio

import pytest

from launcher.errors import ModelsBusy
from launcher.gateway.pool import ModelPool
from launcher.supervise.deployment import Deployment
from launcher.supervise.events import EventKind
from launcher.supervise.states import ModelState
from launcher.testing.memory_process import MemoryProcesses, memory_plan
from launcher.validate import load_source


def spec(name: str, extra: str = ""):
    text = f"model: {name}.gguf\nmodel_alias: {name}\n{extra}"
    return load_source(text, "x.yaml", offline=True).config.models[0]


class Sleeps:
    """Records the delays the runner asks for; returns at once unless `held` (then at `release()`)."""

    def __init__(self):
        self.delays: list[float] = []
        self.held = False
        self._gate: asyncio.Event | None = None

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.held:
            self._gate = self._gate or asyncio.Event()
            await self._gate.wait()
        await asyncio.sleep(0)

    def release(self) -> None:
        self.held = False
        if self._gate:
            self._gate.set()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def deployment_with(*names, replicas=1, slots=1, extra="", fail_starts=None):
    procs, sleeps = MemoryProcesses(fail_starts), Sleeps()
    dep = Deployment(procs, sleep=sleeps)
    events = []
    dep.events.subscribe(events.append)
    runners = [dep.add(memory_plan(n, replicas, slots), spec(n, extra)) for n in names]
    return dep, runners, procs, sleeps, events


def test_pick_prefers_the_upstream_with_the_most_free_slots_and_skips_unready_ones():
    async def scenario():
        _, [runner], procs, sleeps, _ = deployment_with("m", replicas=3, slots=4)
        await runner.start()
        a, b, c = runner.upstreams
        a.in_flight, b.in_flight, c.in_flight = 3, 1, 2
        assert runner.pick() is b
        assert runner.pick(exclude=[b]) is c
        sleeps.held = True  # the restart waits out its backoff
        procs.current("m#1").crash()
        await settle()
        assert not b.ready and runner.pick() is c  # a dead replica leaves rotation at once
        c.slots = 1  # 2 in flight on 1 slot is fuller than 3 on 4
        assert runner.pick() is a
        sleeps.release()
        await settle()
        assert b.ready and runner.pick() is b  # back after its restart
        await runner.stop()
    asyncio.run(scenario())


def test_restarts_back_off_exponentially_then_the_model_fails_for_good():
    async def scenario():
        _, [runner], procs, sleeps, events = deployment_with(
            "m", extra="engine: {max_restarts: 3, restart_backoff: 0.5}\n")
        await runner.start()
        pids = [procs.current("m#0").pid]
        for _ in range(3):
            procs.current("m#0").crash()
            await settle()
            assert runner.state == ModelState.READY
            pids.append(procs.current("m#0").pid)
        assert sleeps.delays == [0.5, 1.0, 2.0] and runner.restarts == 3 and len(set(pids)) == 4
        procs.current("m#0").crash()  # the fourth crash is over the limit
        await settle()
        assert runner.state == ModelState.FAILED and procs.current("m#0").starts == 4
        kinds = [e.kind for e in events]
        assert kinds.count(EventKind.RESTARTED) == 3 and kinds[-1] == EventKind.FAILED
        await runner.stop()
        assert runner.state == ModelState.FAILED  # a failed model stays failed until started again
    asyncio.run(scenario())


def test_a_restart_that_fails_to_start_counts_as_another_crash():
    async def scenario():
        _, [runner], procs, sleeps, _ = deployment_with("m", extra="engine: {max_restarts: 5, restart_backoff: 1}\n")
        await runner.start()
        procs.current("m#0").fail_starts = 2
        procs.current("m#0").crash()
        await settle()
        assert sleeps.delays == [1, 2, 4] and runner.restarts == 3 and runner.state == ModelState.READY
        await runner.stop()
    asyncio.run(scenario())


def test_one_replica_crashing_keeps_the_model_ready():
    async def scenario():
        _, [runner], procs, _, events = deployment_with("m", replicas=2, extra="engine: {restart_backoff: 1}\n")
        await runner.start()
        procs.current("m#0").crash()
        await settle()
        states = [e.state for e in events if e.kind == EventKind.STATE]
        assert ModelState.RESTARTING not in states and runner.state == ModelState.READY
        await runner.stop()
    asyncio.run(scenario())


def test_loading_evicts_the_least_recently_used_idle_model():
    async def scenario():
        dep, (a, b, c), _, _, _ = deployment_with("a", "b", "c")
        pool = ModelPool(dep, max_loaded=2, load_timeout=5)
        await pool.ensure_loaded(a)
        await pool.ensure_loaded(b)
        pool.touch(a)  # a used after b: b is now the least recently used
        await pool.ensure_loaded(c)
        assert (a.state, b.state, c.state) == (ModelState.READY, ModelState.STOPPED, ModelState.READY)
        await dep.stop_all()
    asyncio.run(scenario())


def test_a_busy_model_is_never_evicted_and_the_load_gives_up_with_queue_full():
    async def scenario():
        dep, (a, b), _, _, _ = deployment_with("a", "b")
        pool = ModelPool(dep, max_loaded=1, load_timeout=0.3)
        await pool.ensure_loaded(a)
        a.pending = 1  # a request is on its way to a's engine
        with pytest.raises(ModelsBusy):
            await pool.ensure_loaded(b)
        assert a.state == ModelState.READY and b.state == ModelState.STOPPED
        a.pending = 0
        await pool.ensure_loaded(b)
        assert a.state == ModelState.STOPPED and b.state == ModelState.READY
        await dep.stop_all()
    asyncio.run(scenario())


def test_deployment_resolves_aliases_and_never_falls_back():
    dep, (a, b), _, _, events = deployment_with("alpha", "beta")
    assert dep.resolve("beta") is b and dep.find("gamma") is None
    with pytest.raises(Exception) as err:
        dep.resolve("gamma")
    assert getattr(err.value, "code", "") == "model_not_found"
    assert [e.kind for e in events] == [EventKind.ADDED, EventKind.ADDED]


def test_model_names_match_case_insensitively():
    dep, (a,), _, _, _ = deployment_with("deepseek-v2-lite")
    assert dep.resolve("DeepSeek-V2-Lite") is a and dep.find("DEEPSEEK-v2-LITE") is a


def test_an_on_demand_load_evicts_by_bytes_the_fewest_idle_models_on_its_devices():
    """NPU 0 (64 GiB) holds a (20) and b (20), NPU 1 holds c (40). d needs 30 on NPU 0: one of a, b must go,
    the least recently used (b); c, on another NPU, stays. e needs 60 on NPU 0: a and d both go. A busy model
    is never evicted: the load waits and gives up with 503."""
    from launcher.gateway.room import Room
    g = 2**30

    async def scenario():
        dep, (a, b, c, d, e), _, _, _ = deployment_with("a", "b", "c", "d", "e")
        room = Room({("cann", 0): 64 * g, ("cann", 1): 64 * g}, {},
                    {"a": {("cann", 0): 20 * g}, "b": {("cann", 0): 20 * g}, "c": {("cann", 1): 40 * g},
                     "d": {("cann", 0): 30 * g}, "e": {("cann", 0): 60 * g}})
        pool = ModelPool(dep, max_loaded=None, load_timeout=0.3, room=room)
        for r in (b, a, c):
            await pool.ensure_loaded(r)
        pool.touch(a)
        await pool.ensure_loaded(d)
        assert [r.name for r in (a, b, c, d) if r.state == ModelState.READY] == ["a", "c", "d"]
        await pool.ensure_loaded(e)
        assert [r.name for r in (a, b, c, d, e) if r.state == ModelState.READY] == ["c", "e"]
        e.pending = 1   # a request on its way to e: it stays, and a cannot load beside it
        with pytest.raises(ModelsBusy):
            await pool.ensure_loaded(a)
        assert e.state == ModelState.READY and a.state == ModelState.STOPPED
        await dep.stop_all()
    asyncio.run(scenario())


def test_the_fewest_victims_win_over_the_oldest_one():
    from launcher.gateway.room import Room
    room = Room({("cann", 0): 100}, {}, {"old": {("cann", 0): 10}, "mid": {("cann", 0): 10},
                                       "big": {("cann", 0): 60}, "new": {("cann", 0): 50}})
    loaded = ["old", "mid", "big"]
    # evicting old and mid (the two least recent) frees 20: not enough; big alone frees 60
    assert room.victims("new", loaded, ["old", "mid", "big"]) == ["big"]
    assert room.victims("new", ["old", "mid"], ["old", "mid"]) == []      # fits already
    assert room.victims("new", loaded, ["old", "mid"]) is None           # big is busy: nothing idle is enough
