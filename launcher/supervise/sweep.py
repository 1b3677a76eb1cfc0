"""Kill what an mpirun job left behind on this host.

Open MPI 5 starts each rank in its own process group, so signalling mpirun's group does not
reach them. Every process of a job carries LAUNCHER_JOB=<marker> in its environment
(mpirun -x passes it on); after mpirun exits we look for that marker and kill what we find.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

from ..plan.model import JOB_ENV


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
