"""One owner per child process: start, readiness, stop, with an explicit state.

States: stopped -> starting -> ready -> (exit) failed | stopping -> stopped.
Children get their own session (so a stop reaches the whole group) and die with
launcher even if it is SIGKILLed (PR_SET_PDEATHSIG).
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import httpx

from ..errors import StartError
from ..plan.model import ProcessSpec

PR_SET_PDEATHSIG = 1


def terminate(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Blocking stop of a plain Popen child: SIGTERM, `grace` seconds, SIGKILL."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


class ManagedProcess:
    def __init__(self, spec: ProcessSpec, log_dir: Path, echo: bool = True):
        self.spec = spec
        self.state = "stopped"
        self.proc: asyncio.subprocess.Process | None = None
        self.log_path = log_dir / f"{spec.name.replace('#', '-')}.log"
        self.echo = echo
        self.tail: deque[str] = deque(maxlen=40)
        self.started_at: float | None = None
        self._pump: asyncio.Task | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        env = dict(os.environ)
        env.update(self.spec.env_dict)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.state = "starting"
        self.tail.clear()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.spec.argv, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent)
        except OSError as exc:
            self.state = "failed"
            raise StartError(f"[{self.spec.name}] cannot start {self.spec.argv[0]}: {exc.strerror}") from exc
        self.started_at = time.time()
        self._pump = asyncio.create_task(self._pump_output())

    async def _pump_output(self) -> None:
        assert self.proc and self.proc.stdout
        with open(self.log_path, "ab") as log:
            log.write(f"--- start pid {self.proc.pid}: {' '.join(self.spec.argv)}\n".encode())
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    break
                log.write(line)
                log.flush()
                text = line.decode(errors="replace").rstrip()
                self.tail.append(text)
                if self.echo:
                    sys.stderr.write(f"[{self.spec.name}] {text}\n")

    async def wait_ready(self, timeout: float, client: httpx.AsyncClient) -> None:
        """Poll the health URL (503 while loading) until 200; fail at once if the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                await self._drain_pump()
                self.state = "failed"
                raise StartError(f"[{self.spec.name}] exited with {self.returncode_text()} while starting; "
                                 f"last lines:\n" + "\n".join(self.tail) + f"\nfull log: {self.log_path}")
            if self.spec.health_url is None:
                self.state = "ready"
                return
            try:
                resp = await client.get(self.spec.health_url, timeout=2.0)
                if resp.status_code == 200:
                    self.state = "ready"
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
        self.state = "failed"
        raise StartError(f"[{self.spec.name}] not healthy after {timeout:.0f}s (see {self.log_path})")

    def returncode_text(self) -> str:
        code = self.proc.returncode if self.proc else None
        if code is not None and code < 0:
            return f"signal {signal.Signals(-code).name}"
        return f"code {code}"

    async def wait_exit(self) -> int:
        assert self.proc
        code = await self.proc.wait()
        await self._drain_pump()
        return code

    async def _drain_pump(self) -> None:
        if self._pump:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._pump), 2)

    async def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to the process group, wait `grace`, then SIGKILL to the group."""
        if not self.proc:
            self.state = "stopped"
            return
        self.state = "stopping"
        await _signal_group(self.proc, signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), grace)
        except asyncio.TimeoutError:
            await _signal_group(self.proc, signal.SIGKILL)
            await self.proc.wait()
        # Whatever else lives in the group (helpers of the engine) goes too.
        await _signal_group(self.proc, signal.SIGKILL)
        self.sweep()
        await self._drain_pump()
        self.state = "stopped"

    def sweep(self) -> list[int]:
        """mpirun jobs: kill ranks that outlived mpirun (they are in other process groups)."""
        marker = self.spec.env_dict.get("LAUNCHER_JOB")
        if not marker:
            return []
        from .sweep import kill_marked
        return kill_marked(marker)

    def kill_now(self) -> None:
        """Synchronous last resort (second Ctrl-C, interpreter exit)."""
        if self.proc and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.sweep()


async def _signal_group(proc: asyncio.subprocess.Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
