"""Tier 1: a model launcher runs and a replica another gateway registered are two implementations of one
`Target`, share its load/busy/pick rule, and show the same engine view in every route."""
import asyncio

from launcher.gateway.registry import RemoteReplica
from launcher.gateway.views import target_view
from launcher.supervise.deployment import Deployment
from launcher.supervise.targets import Target
from launcher.testing.memory_process import MemoryProcesses, memory_plan
from tests.unit.test_supervise_memory import Sleeps, spec


def test_a_runner_and_a_remote_replica_are_both_targets_with_one_load_rule():
    async def scenario():
        dep = Deployment(MemoryProcesses(), sleep=Sleeps())
        runner = dep.add(memory_plan("m", 2, 4), spec("m"))
        await runner.start()
        replica = RemoteReplica("r1", "http://10.0.0.2:8080", [{"type": "chat"}])
        assert isinstance(runner, Target) and isinstance(replica, Target)
        for target in (runner, replica):
            assert target.load == 0 and not target.busy
            up = target.pick()
            up.in_flight += 1
            target.pending += 1
            assert target.busy and target.pick(exclude=(up,)) is not up
            slots = sum(u.slots for u in target.upstreams if u.ready)
            assert target.load == 2 / slots
        await runner.stop()
    asyncio.run(scenario())


def test_every_engine_view_has_the_same_fields_for_local_and_registered_targets():
    async def scenario():
        dep = Deployment(MemoryProcesses(), sleep=Sleeps())
        runner = dep.add(memory_plan("m", 2, 1), spec("m"))
        await runner.start()
        local = target_view(runner)
        remote = target_view(RemoteReplica("r1", "http://10.0.0.2:8080", [{"type": "chat"}]))
        assert (local.kind, remote.kind) == ("model", "remote")
        assert [e.name for e in local.engines] == ["m#0", "m#1"]
        assert all(e.pid is not None and e.state == "ready" for e in local.engines)
        assert set(local.engines[0].as_json()) == set(remote.engines[0].as_json()) == \
            {"name", "url", "pid", "port", "state", "in_flight", "served"}
        await runner.stop()
        assert all(e.pid is None for e in target_view(runner).engines)  # no process runs: no pid shown
    asyncio.run(scenario())
