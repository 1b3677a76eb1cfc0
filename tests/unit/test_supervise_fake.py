"""Tier 1: process ownership against fake engines: start failures, stop escalation, replicas."""
import asyncio
import os
import signal

import httpx
import pytest

from launcher.errors import StartError
from launcher.net import free_ports
from launcher.plan.model import ProcessSpec
from launcher.supervise.process import ManagedProcess
from launcher.testing.launched import wait_for
from launcher.validate import load_source
from tests.fakes.harness import FAKE, config_text, fake_deployment, fake_plan, gateway

CHAT = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}


def spec_for(tmp_path):
    return load_source(config_text(), str(tmp_path / "c.yaml"), offline=True).config.models[0]


def test_exit_during_start_fails_at_once_with_last_lines(tmp_path):
    runner = fake_deployment(tmp_path).add(fake_plan("fake", ["--fail-start"]), spec_for(tmp_path))
    with pytest.raises(StartError) as err:
        asyncio.run(runner.start())
    # seen as an exit while starting, not as the 20 s start timeout running out
    assert "exited with code 3 while starting" in str(err.value) and "not healthy" not in str(err.value)
    assert "cannot load model: file is corrupt" in str(err.value)
    assert runner.state == "failed"


def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(tmp_path):
    async def scenario():
        port = next(free_ports())
        spec = ProcessSpec("stubborn", "engine", (*FAKE, "--port", str(port), "--ignore-sigterm"),
                           (), port, f"http://127.0.0.1:{port}/health")
        proc = ManagedProcess(spec, tmp_path, echo=False)
        await proc.start()
        await proc.ensure_ready(20)
        await proc.stop(grace=0.5)
        return proc
    proc = asyncio.run(scenario())
    assert proc.state == "stopped" and proc.proc.returncode == -signal.SIGKILL
    with pytest.raises(ProcessLookupError):
        os.kill(proc.pid, 0)


def test_replicas_share_load_and_a_dead_replica_is_skipped(tmp_path):
    with gateway(tmp_path, ["--tokens", "3", "--delay", "0.1"], replicas=2) as gw:
        async def burst():
            async with httpx.AsyncClient(timeout=30) as c:
                return await asyncio.gather(*(c.post(gw.url + "/v1/chat/completions", json=CHAT) for _ in range(6)))
        assert all(r.status_code == 200 for r in asyncio.run(burst()))
        assert gw.stats(0)["requests"] >= 2 and gw.stats(1)["requests"] >= 2
        dead = gw.runners[0].upstreams[0].process
        os.kill(dead.pid, signal.SIGKILL)
        results = [httpx.post(gw.url + "/v1/chat/completions", json=CHAT, timeout=30).status_code for _ in range(4)]
        assert results == [200] * 4
        assert wait_for(lambda: all(u.ready for u in gw.runners[0].upstreams))
        assert all(u.ready for u in gw.runners[0].upstreams) and gw.runners[0].restarts == 1
