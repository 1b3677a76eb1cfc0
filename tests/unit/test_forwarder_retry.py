"""Tier 1: when the forwarder retries (Go's net/http rule): a pooled connection dropped without a response
is retried for generation; a request taken on a new connection, or one that is not replayable, is not."""
import asyncio
import json
from types import SimpleNamespace

import httpx

from launcher.errors import EngineUnavailable
from launcher.gateway.metrics import Metrics
from launcher.gateway.proxy import Forwarder
from launcher.gateway.slots import SlotQueue
from launcher.supervise.runner import Upstream

BODY = json.dumps({"choices": [{"text": "ok"}]}).encode()


async def flaky_keepalive_server(stats: dict, answered: int = 1):
    """Answers the first `answered` requests of each connection, then drops the next one silently."""
    async def handle(reader, writer):
        stats["connections"] += 1
        served = 0
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            length = int([ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")][0])
            await reader.readexactly(length)
            if served >= answered:
                stats["dropped"] += 1
                break  # close without a word, as llama-server sometimes does with a reused connection
            served += 1
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                         + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
            await writer.drain()
        writer.close()
    return await asyncio.start_server(handle, "127.0.0.1", 0)


def run_three(answered: int = 1, replayable: bool = True):
    async def scenario():
        stats = {"connections": 0, "dropped": 0}
        server = await flaky_keepalive_server(stats, answered)
        port = server.sockets[0].getsockname()[1]
        up = Upstream(f"http://127.0.0.1:{port}", SimpleNamespace(state="ready"), slots=4)
        runner = SimpleNamespace(name="m", state="ready", upstreams=[up],
                                 pick=lambda exclude=(): None if up in exclude else up)
        limits = httpx.Limits(max_keepalive_connections=8, keepalive_expiry=30)
        async with httpx.AsyncClient(limits=limits) as client:
            fwd = Forwarder(client, Metrics(), SlotQueue(max_queue=4, load_timeout=10, queue_timeout=10))
            results = []
            for _ in range(3):
                try:
                    status, _, content = await fwd.fetch(runner, "/v1/completions", b"{}", replayable=replayable)
                except EngineUnavailable as exc:
                    status, content = exc.status, str(exc).encode()
                results.append((status, content))
        server.close()
        return results, stats, up
    return asyncio.run(scenario())


def test_request_on_a_dropped_pooled_connection_is_retried_once():
    results, stats, up = run_three()
    assert [s for s, _ in results] == [200, 200, 200]
    assert stats["dropped"] >= 1 and stats["connections"] >= 2  # the drop happened and was retried
    assert up.in_flight == 0


def test_a_request_taken_on_a_new_connection_then_dropped_is_not_sent_again():
    results, stats, up = run_three(answered=0)  # the engine dies with every request it receives
    assert [s for s, _ in results] == [503, 503, 503] and b"failed during the request" in results[0][1]
    assert stats["dropped"] == 3 and stats["connections"] == 3  # each sent once: no second engine crashed
    assert up.in_flight == 0


def test_a_worker_request_is_never_replayed_after_it_was_written():
    results, stats, up = run_three(replayable=False)
    assert [s for s, _ in results] == [200, 503, 200]  # the second went out on the reused connection and died
    assert stats["dropped"] == 1 and up.in_flight == 0


def test_a_request_taken_by_a_dying_replica_goes_once_to_another():
    """Two replicas: one takes every request on a new connection and dies with it; the other answers. Each
    request reaches the second once; a worker's request (not replayable) is never sent again."""
    async def scenario():
        dying, healthy = {"connections": 0, "dropped": 0}, {"connections": 0, "dropped": 0}
        bad, good = await flaky_keepalive_server(dying, answered=0), await flaky_keepalive_server(healthy, 100)
        ups = [Upstream(f"http://127.0.0.1:{s.sockets[0].getsockname()[1]}", SimpleNamespace(state="ready"), slots=1)
               for s in (bad, good)]
        runner = SimpleNamespace(name="m", state="ready", upstreams=ups)
        async with httpx.AsyncClient() as client:
            fwd = Forwarder(client, Metrics(), SlotQueue(max_queue=4, load_timeout=10, queue_timeout=10))
            statuses = []
            for _ in range(3):
                ups[0].in_flight = 0  # the next request picks the dying one first (both idle: the first)
                status, _, _ = await fwd.fetch(runner, "/v1/completions", b"{}")
                statuses.append(status)
            try:
                await fwd.fetch(runner, "/v2/models/w/infer", b"{}", replayable=False)
                worker = 200
            except EngineUnavailable:
                worker = 503
        bad.close()
        good.close()
        return statuses, worker, dying, healthy, ups
    statuses, worker, dying, healthy, ups = asyncio.run(scenario())
    assert statuses == [200, 200, 200] and dying["dropped"] == 4 and worker == 503
    assert [u.in_flight for u in ups] == [0, 0]
