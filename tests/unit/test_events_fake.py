"""Tier 1: /api/events, the console's one stream: a snapshot, then requests, state changes and log lines."""
import os
import signal
import threading

import httpx

from launcher.testing.launched import wait_for
from tests.fakes.harness import gateway
from tests.fakes.sse import follow


def test_console_events_snapshot_requests_states_and_logs(tmp_path):
    with gateway(tmp_path, ["--tokens", "4"]) as gw:
        events, stop = [], threading.Event()
        reader = threading.Thread(target=follow, args=(gw.url + "/api/events", events, stop), daemon=True)
        reader.start()
        assert wait_for(lambda: events and events[0][0] == "snapshot", 10)
        [model] = events[0][1]["models"]
        assert model["name"] == "fake" and model["state"] == "ready" and model["engines"][0]["pid"]
        httpx.post(gw.url + "/v1/chat/completions", json={"model": "fake", "stream": True,
                                                          "messages": [{"role": "user", "content": "hi"}]})
        assert wait_for(lambda: any(k == "request" for k, _ in events), 10), events
        request = next(d for k, d in events if k == "request")
        assert (request["model"], request["protocol"], request["endpoint"], request["status"], request["tokens_out"]) \
            == ("fake", "openai", "chat", 200, 4) and request["ttft_ms"] is not None
        # the sparklines' samples (every 2 s) see the 4 streamed tokens
        assert wait_for(lambda: any(k == "models" and sum(d[0]["trend"]["tokens_per_s"]) > 0 for k, d in events), 15)
        os.kill(gw.deployment.models[0].upstreams[0].process.pid, signal.SIGKILL)
        assert wait_for(lambda: any(k == "model" and d["kind"] == "restarted" for k, d in events), 10), events
        assert wait_for(lambda: any(k == "log" and d["source"] == "fake#0" and "listening" in d["text"]
                                    for k, d in events), 15)
        assert wait_for(lambda: any(k == "models" and d[0]["restarts"] == 1 and d[0]["state"] == "ready"
                                    for k, d in events), 15)
        stop.set()
        reader.join(10)
