"""One owner per child process: start, readiness, stop, with an explicit state (see states.py).

`Process` is the interface the runner depends on; `ManagedProcess` is the real one. Tier-1 tests
hand the runner an in-memory fake instead. Children get their own session (so a stop reaches
the whole group) and die with launcher even if it is SIGKILLed (PR_SET_PDEATHSIG).
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections import deque
from pathlib import Path
from typing import Callable, Protocol

import httpx

from ..children import die_with_parent
from ..errors import StartError
from ..plan.model import JOB_ENV, ProcessSpec
from .proctree import kill_marked
from .states import ProcessState

FOLLOW_EVERY = 0.5  # seconds between reads of a child's log: how late its lines reach the hub and the console


class Process(Protocol):
    """What the runner needs of a process it owns."""
    spec: ProcessSpec
    state: ProcessState
    started_at: float | None

    @property
    def pid(self) -> int | None: ...

    async def start(self) -> None: ...

    async def ensure_ready(self, timeout: float) -> None:
        """Return once healthy; raise StartError if it exits or times out first."""

    async def wait_exit(self) -> int:
        """Return when the process has exited (after its job's leftovers were killed)."""

    def exit_reason(self) -> str: ...

    async def stop(self, grace: float = 10.0) -> None: ...

    def kill_now(self) -> None:
        """Synchronous last resort (second Ctrl-C, interpreter exit)."""


ProcessFactory = Callable[[ProcessSpec], Process]


class ManagedProcess:
    def __init__(self, spec: ProcessSpec, log_dir: Path, echo: bool = True, secret_env: dict | None = None):
        self.spec = spec
        self.secret_env = dict(secret_env or {})  # added at start, never part of the plan (keys)
        self.state = ProcessState.STOPPED
        self.proc: asyncio.subprocess.Process | None = None
        self.log_path = log_dir / f"{spec.name.replace('#', '-')}.log"
        self.echo = echo
        self.tail: deque[str] = deque(maxlen=40)
        self.started_at: float | None = None
        self.health: dict | None = None   # the last healthy answer's JSON (a worker lists its capabilities)
        self._pump: asyncio.Task | None = None     # follows the log file (_follow)
        self._follower: _LogFollower | None = None
        self.on_line: Callable[[str, str], None] | None = None  # (process name, line): the deployment's LogHub

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        env = dict(os.environ)
        env.update(self.spec.env_dict)
        env.update(self.secret_env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.state = ProcessState.STARTING
        self.tail.clear()
        # The child writes its output straight into its log file; launcher reads the new lines from there every
        # FOLLOW_EVERY seconds. An engine logs several lines per request: read as they came, each cost the
        # gateway a wake-up, a read and a write on the request path (`launch bench cost`).
        with open(self.log_path, "ab") as log:
            log.write(f"--- start: {' '.join(self.spec.argv)}\n".encode())
            log.flush()
            self._follower = _LogFollower(self.log_path, log.tell(), self._line)
            try:
                self.proc = await asyncio.create_subprocess_exec(
                    *self.spec.argv, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=log,
                    stderr=asyncio.subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)
            except OSError as exc:
                self.state = ProcessState.FAILED
                self._follower.close()
                raise StartError(f"[{self.spec.name}] cannot start {self.spec.argv[0]}: {exc.strerror}") from exc
        self.started_at = time.time()
        self._pump = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        """New lines of the child's log into the crash tail and the log hub, until it exits (then the rest)."""
        assert self.proc and self._follower
        try:
            while self.proc.returncode is None:
                await asyncio.sleep(FOLLOW_EVERY)
                self._follower.read()
        finally:
            self._follower.read(final=True)
            self._follower.close()

    def _catch_up(self) -> None:
        if self._follower is not None:
            self._follower.read()

    def _line(self, raw: bytes) -> None:
        text = raw.decode(errors="replace").rstrip()
        self.tail.append(text)
        if self.on_line:
            self.on_line(self.spec.name, text)
        if self.echo:
            sys.stderr.write(f"[{self.spec.name}] {text}\n")

    async def ensure_ready(self, timeout: float) -> None:
        """Poll the health URL (503 while loading) until 200; fail at once if the process exits."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                if not self.running:
                    await self._drain_pump()
                    self.state = ProcessState.FAILED
                    raise StartError(f"[{self.spec.name}] exited with {self.exit_reason()} while starting; "
                                     f"last lines:\n" + "\n".join(self.tail) + f"\nfull log: {self.log_path}")
                if self.spec.health_url is None:
                    self._catch_up()
                    self.state = ProcessState.READY
                    return
                with contextlib.suppress(httpx.HTTPError):
                    resp = await client.get(self.spec.health_url, timeout=2.0)
                    if resp.status_code == 200:
                        self.health = _json_or_none(resp)
                        self._catch_up()  # the start-up lines are in the hub by the time it serves
                        self.state = ProcessState.READY
                        return
                await asyncio.sleep(0.2)
        self.state = ProcessState.FAILED
        raise StartError(f"[{self.spec.name}] not healthy after {timeout:.0f}s (see {self.log_path})")

    def exit_reason(self) -> str:
        code = self.proc.returncode if self.proc else None
        if code is not None and code < 0:
            return f"signal {signal.Signals(-code).name}"
        return f"code {code}"

    async def wait_exit(self) -> int:
        assert self.proc
        code = await self.proc.wait()
        if self.state != ProcessState.STOPPING:
            self.state = ProcessState.FAILED  # at once: the gateway must stop sending it requests now
        self._sweep()  # an mpirun job: its ranks must not outlive it
        await self._drain_pump()
        return code

    async def _drain_pump(self) -> None:
        """The last lines of an exited child (its follower reads them at once rather than at its next tick)."""
        if self._pump and not self._pump.done():
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pump

    async def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to the process group, wait `grace`, then SIGKILL to the group."""
        if not self.proc:
            self.state = ProcessState.STOPPED
            return
        self.state = ProcessState.STOPPING
        _signal_group(self.proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), grace)
        except asyncio.TimeoutError:
            _signal_group(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()
        # Whatever else lives in the group (helpers of the engine) goes too.
        _signal_group(self.proc.pid, signal.SIGKILL)
        self._sweep()
        await self._drain_pump()
        self.state = ProcessState.STOPPED

    def _sweep(self) -> list[int]:
        """mpirun jobs: kill ranks that outlived mpirun (they are in other process groups)."""
        marker = self.spec.env_dict.get(JOB_ENV)
        return kill_marked(marker) if marker else []

    def kill_now(self) -> None:
        if self.proc and self.proc.returncode is None:
            _signal_group(self.proc.pid, signal.SIGKILL)
        self._sweep()


class _LogFollower:
    """Reads what a child appended to its log file since the last read, line by line."""

    def __init__(self, path: Path, offset: int, on_line: Callable[[bytes], None]):
        self.fh = open(path, "rb")
        self.fh.seek(offset)
        self.partial, self.on_line = b"", on_line

    def read(self, final: bool = False) -> None:
        if self.fh.closed:
            return
        block = self.fh.read()
        if block:
            *lines, self.partial = (self.partial + block).split(b"\n")
            for line in lines:
                self.on_line(line)
        if final and self.partial:
            self.on_line(self.partial)
            self.partial = b""

    def close(self) -> None:
        self.fh.close()


def _json_or_none(resp: httpx.Response) -> dict | None:
    try:
        data = resp.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
