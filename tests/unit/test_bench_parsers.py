"""The cost and ceiling benchmarks' readings: CPU time from /proc, wrk's output."""
import os
import threading

import pytest

from launcher.bench.ceiling import _RATE, _SOCKET, wrk_script
from launcher.bench.cost import cpu_seconds
from launcher.errors import LauncherError

WRK = """Running 6s test @ http://127.0.0.1:1/v1/chat/completions
  1 threads and 16 connections
  8712 requests in 6.01s, 80.12MB read
  Socket errors: connect 0, read 8700, write 0, timeout 0
Requests/sec:   1449.57
Transfer/sec:     13.33MB
"""


def test_cpu_time_counts_every_thread_finely():
    before = cpu_seconds(os.getpid())

    def spin():
        x = 0
        for i in range(2_000_000):
            x += i
    t = threading.Thread(target=spin)
    t.start()
    t.join()
    spin()
    spent = cpu_seconds(os.getpid()) - before
    assert 0.01 < spent < 60   # both spins counted, at sub-tick resolution


def test_wrk_rate_and_errors_are_read():
    assert float(_RATE.search(WRK).group(1)) == 1449.57
    # read errors are the engine closing after each stream; the others are failures
    assert [int(n) for n in _SOCKET.search(WRK).groups()] == [0, 0, 0]
    assert [int(n) for n in _SOCKET.search(WRK.replace("connect 0", "connect 3")).groups()] == [3, 0, 0]


def test_wrk_script_posts_a_streamed_chat_and_closes(tmp_path):
    text = wrk_script(tmp_path, 64).read_text()
    assert 'wrk.method = "POST"' in text and '"Connection"] = "close"' in text and '\\"stream\\": true' in text


def test_ceiling_without_wrk_says_how_to_get_it(monkeypatch):
    from types import SimpleNamespace

    from launcher.bench import ceiling
    monkeypatch.setattr(ceiling.shutil, "which", lambda name: None)
    with pytest.raises(LauncherError, match="apt-get install wrk"):
        ceiling.run(SimpleNamespace(concurrency="16", max_tokens=64, seconds=1, rounds=1, json=None))


def test_the_keyed_front_of_bench_cost_is_a_valid_config_with_every_limit_on(tmp_path):
    from argparse import Namespace

    from launcher.bench.cost import KEYED_SECRET, keyed_extra
    from launcher.bench.overhead import GEMMA
    from launcher.gateway.keys import load_keyring
    from launcher.validate import load_source
    text = GEMMA.format(port=8123, extra=keyed_extra(tmp_path, Namespace(fake=True, delay=0.002)))
    gw = load_source(text, str(tmp_path / "bench.yaml"), offline=True).config.gateway
    who = load_keyring(gw).identify(KEYED_SECRET)
    assert who.name == "research" and who.requests_per_minute and who.tokens_per_minute and who.max_concurrent
    assert who.may_use(["gemma"]) and gw.capture and gw.usage_db.startswith(str(tmp_path))
