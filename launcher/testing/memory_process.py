"""An in-memory Process for tier-1 tests of supervision and routing logic: nothing is spawned; the test
decides when a process crashes, and whether its start fails."""
from __future__ import annotations

import asyncio
import itertools
import time

from launcher.errors import StartError
from launcher.plan.model import ModelPlan, ProcessSpec
from launcher.supervise.states import ProcessState

_pids = itertools.count(10_000)


class MemoryProcess:
    def __init__(self, spec: ProcessSpec, fail_starts: int = 0):
        self.spec = spec
        self.state = ProcessState.STOPPED
        self.started_at: float | None = None
        self.starts = 0
        self.fail_starts = fail_starts   # this many starts fail before one succeeds
        self.code: int | None = None
        self._pid: int | None = None
        self._exit: asyncio.Future | None = None

    @property
    def pid(self) -> int | None:
        return self._pid

    async def start(self) -> None:
        self.starts += 1
        self.state = ProcessState.STARTING
        self.started_at = time.time()
        self._pid, self.code = next(_pids), None
        self._exit = asyncio.get_running_loop().create_future()

    async def ensure_ready(self, timeout: float) -> None:
        if self.fail_starts:
            self.fail_starts -= 1
            self.crash(3)
            self.state = ProcessState.FAILED
            raise StartError(f"[{self.spec.name}] exited with code 3 while starting")
        self.state = ProcessState.READY

    def crash(self, code: int = -9) -> None:
        """The process exits unasked (call on the loop the runner runs on)."""
        if self._exit and not self._exit.done():
            self.code = code
            self._exit.set_result(code)

    async def wait_exit(self) -> int:
        code = await self._exit
        if self.state != ProcessState.STOPPING:
            self.state = ProcessState.FAILED
        return code

    def exit_reason(self) -> str:
        return f"code {self.code}"

    async def stop(self, grace: float = 10.0) -> None:
        self.state = ProcessState.STOPPING
        self.crash(0)
        self.state = ProcessState.STOPPED

    def kill_now(self) -> None:
        self.crash(-9)


class MemoryProcesses:
    """The factory a Deployment takes; remembers every process it made, by name."""

    def __init__(self, fail_starts: dict[str, int] | None = None):
        self.made: list[MemoryProcess] = []
        self.fail_starts = fail_starts or {}

    def __call__(self, spec: ProcessSpec) -> MemoryProcess:
        proc = MemoryProcess(spec, self.fail_starts.pop(spec.name, 0))
        self.made.append(proc)
        return proc

    def current(self, name: str) -> MemoryProcess:
        return [p for p in self.made if p.spec.name == name][-1]


def memory_plan(name: str, replicas: int = 1, slots: int = 1) -> ModelPlan:
    procs = tuple(ProcessSpec(f"{name}#{i}", "engine", ("engine", str(i)), port=20000 + i) for i in range(replicas))
    return ModelPlan(name, (name,), "replicas" if replicas > 1 else "single", procs,
                     upstreams=tuple(f"http://engine-{name}-{i}" for i in range(replicas)), slots_per_upstream=slots)
