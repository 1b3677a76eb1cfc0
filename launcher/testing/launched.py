"""`launch` as a subprocess, the way benchmarks and end-to-end tests run it.

    with launched(["--config", "x.yaml"], url) as run:     # started, /ready answered
        ...
    # stopped with Ctrl-C; StartError if a process of its tree outlived it

Every process `launch` started (engines, mpirun and its ranks) is remembered while it runs, from
/proc, so the stop can check that none of them survived, even those outside its process group.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import httpx

from ..errors import StartError
from ..supervise.proctree import alive, descendants


def wait_for(predicate: Callable[[], object], timeout: float = 15.0, step: float = 0.05) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds pass; returns whether it became true."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


class Launched:
    """`launch ARGS` (after `prefix`, e.g. a user's own `mpirun -np 2`) in a session of its own."""

    def __init__(self, args: list[str], url: str, log: Path, env: dict | None = None, cwd: str | None = None,
                 prefix: tuple[str, ...] = ()):
        self.url, self.log = url, log
        self.headers: dict = {}
        self.tree: set[int] = set()
        self.proc = subprocess.Popen([*prefix, sys.executable, "-m", "launcher", *args], cwd=cwd,
                                     env=dict(os.environ, **(env or {})), stdout=open(log, "w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def remember_tree(self) -> set[int]:
        self.tree |= descendants(self.proc.pid)
        return self.tree

    def wait_ready(self, timeout: float = 180.0) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise StartError(f"launch exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(self.url + "/ready", timeout=2).status_code == 200
            return False
        if not wait_for(ready, timeout, 0.25):
            raise StartError(f"launch not ready after {timeout}s:\n{self.log_tail()}")
        self.remember_tree()

    def models(self) -> dict:
        """The first model of GET /v1/models."""
        return httpx.get(self.url + "/v1/models", headers=self.headers).json()["data"][0]

    def engine_pids(self) -> list[int]:
        return [e["pid"] for e in self.models()["engines"]]

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> int | None:
        """Ctrl-C (or `sig`), wait, SIGKILL the group if it hangs. Returns the exit code."""
        if self.proc.poll() is None:
            self.remember_tree()
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode

    def leftovers(self, timeout: float = 5.0) -> list[int]:
        """Processes of launch's tree still alive `timeout` seconds after it exited."""
        wait_for(lambda: not any(alive(p) for p in self.tree), timeout, 0.1)
        return sorted(p for p in self.tree if alive(p))

    def kill_leftovers(self) -> None:
        for pid in self.leftovers(0):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def launched(args: list[str], url: str, log: Path, *, env: dict | None = None, cwd: str | None = None,
             ready_timeout: float = 900.0) -> Iterator[Launched]:
    run = Launched(args, url, log, env, cwd)
    try:
        run.wait_ready(ready_timeout)
        yield run
    finally:
        run.stop()
        left = run.leftovers()
        run.kill_leftovers()
    if left:  # only when the body itself succeeded: never hide its exception
        raise StartError(f"processes outlived launch: {left}")
