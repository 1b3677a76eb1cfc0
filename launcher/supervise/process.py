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

from ..errors import StartError
from ..plan.model import JOB_ENV, ProcessSpec
from .children import die_with_parent
from .proctree import kill_marked
from .states import ProcessState


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
        self._pump: asyncio.Task | None = None
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
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.spec.argv, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)
        except OSError as exc:
            self.state = ProcessState.FAILED
            raise StartError(f"[{self.spec.name}] cannot start {self.spec.argv[0]}: {exc.strerror}") from exc
        self.started_at = time.time()
        self._pump = asyncio.create_task(self._pump_output())

    async def _pump_output(self) -> None:
        """The child's output into its log file, the crash tail and the log hub. Read in blocks, written
        unbuffered: an engine logs several lines per request, and line-by-line reads with a flush each
        cost the gateway measurable CPU per request (`launch bench cost`)."""
        assert self.proc and self.proc.stdout
        stdout, partial = self.proc.stdout, b""
        with open(self.log_path, "ab", buffering=0) as log:
            log.write(f"--- start pid {self.proc.pid}: {' '.join(self.spec.argv)}\n".encode())
            while True:
                block = await stdout.read(1 << 16)
                if not block:
                    break
                log.write(block)
                *lines, partial = (partial + block).split(b"\n")
                for line in lines:
                    self._line(line)
            if partial:
                log.write(b"\n")
                self._line(partial)

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
                    self.state = ProcessState.READY
                    return
                with contextlib.suppress(httpx.HTTPError):
                    resp = await client.get(self.spec.health_url, timeout=2.0)
                    if resp.status_code == 200:
                        self.health = _json_or_none(resp)
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
        if self._pump:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._pump), 2)

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


def _json_or_none(resp: httpx.Response) -> dict | None:
    try:
        data = resp.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
