"""Tier 1: /logs and /logs/stream[/{model}] over fake engines: history, then live lines, per model."""
import os
import signal
import threading

import httpx

from launcher.testing.launched import wait_for
from tests.fakes.harness import gateway

TWO = """models:
  - {model: a.gguf, model_alias: alpha}
  - {model: b.gguf, model_alias: beta}
engine: {max_restarts: 3, restart_backoff: 0.1, start_timeout: 20}
"""


def read_stream(url: str, got: list, stop: threading.Event) -> None:
    """Lines into `got` until `stop` (seen within the read timeout: a quiet stream ends the read)."""
    with httpx.stream("GET", url, timeout=httpx.Timeout(30, read=5)) as resp:
        got.append(resp.status_code)
        try:
            for line in resp.iter_lines():
                got.append(line)
                if stop.is_set():
                    return
        except httpx.ReadTimeout:
            if not stop.is_set():
                got.append("quiet for 5 s")


def test_logs_keep_history_and_stream_live_lines_per_model(tmp_path):
    with gateway(tmp_path, text=TWO) as gw:
        history = httpx.get(gw.url + "/logs").text
        assert "[alpha#0] fake: listening on" in history and "[beta#0] fake: listening on" in history
        got, stop = [], threading.Event()
        reader = threading.Thread(target=read_stream, args=(gw.url + "/logs/stream/alpha", got, stop), daemon=True)
        reader.start()
        assert wait_for(lambda: any("[alpha#0] fake: listening" in str(g) for g in got), 10), got
        assert not any("[beta#0]" in str(g) for g in got)  # history first, of this model only
        live, stop_live = [], threading.Event()
        follower = threading.Thread(target=read_stream, args=(gw.url + "/logs/stream?no-history", live, stop_live),
                                    daemon=True)
        follower.start()
        assert wait_for(lambda: live == [200], 10), live
        alpha = next(r for r in gw.deployment.models if r.name == "alpha")
        os.kill(alpha.upstreams[0].process.pid, signal.SIGKILL)  # its restart prints again
        assert wait_for(lambda: sum("[alpha#0] fake: listening" in str(g) for g in got) >= 2, 20), got
        assert wait_for(lambda: any("[alpha#0] fake: listening" in str(g) for g in live), 10), live
        assert not any("[beta#0]" in str(g) for g in got)
        stop.set()
        stop_live.set()
        reader.join(5)
        follower.join(5)


def test_log_stream_of_an_unknown_model_is_404(tmp_path):
    with gateway(tmp_path) as gw:
        resp = httpx.get(gw.url + "/logs/stream/nope")
        assert resp.status_code == 404 and resp.json()["error"]["code"] in ("not_found", "model_not_found")
