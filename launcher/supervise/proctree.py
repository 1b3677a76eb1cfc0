"""Processes as /proc shows them: a process's descendants, whether one is alive, its memory, and what an
mpirun job left behind.

Open MPI 5 starts each rank in its own process group, so signalling mpirun's group does not reach
them. Every process of a job carries LAUNCHER_JOB=<marker> in its environment (mpirun -x passes it
on); after mpirun exits, launcher looks for that marker and kills what it finds.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

from ..plan.model import JOB_ENV
from ..procfs import _stat_fields, alive, descendants  # noqa: F401  (this module's names since before)


def rss_mib(pid: int | None) -> float:
    """Resident host memory of a process, in MiB (0 when it is gone)."""
    if not pid:
        return 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (0 when it is gone)."""
    try:
        fields = _stat_fields(pid)
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    except (OSError, IndexError, ValueError):
        return 0.0


def marked_pids(marker: str) -> list[int]:
    needle = f"{JOB_ENV}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            env = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle + b"\0" in env or env.endswith(needle):
            found.append(int(entry.name))
    return found


def kill_marked(marker: str) -> list[int]:
    pids = marked_pids(marker)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return pids
