"""Small helpers for child processes that are not supervised (smoke test, MPI rank programs)."""
from __future__ import annotations

import ctypes
import signal
import subprocess

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL when its parent dies, even if the parent was SIGKILLed."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def terminate(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Blocking stop of a plain Popen child: SIGTERM, `grace` seconds, SIGKILL."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
