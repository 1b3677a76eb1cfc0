"""A pod for a test: a process in a network namespace (its "node"), with the pod's hostname, the ConfigMap
and model folders bind-mounted where the manifest mounts them (in the process's own mount namespace, which
`ip netns exec` gives it), `/etc/hosts` entries for the cluster names it resolves, and exactly the
environment the image and the operator give it (`env -i`): nothing of the test's own leaks in."""
from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

VENV_BIN = str(Path(sys.executable).parent)


def image_env(cache: Path) -> dict[str, str]:
    """What the Containerfile's ENV sets: launch on PATH, the build cache the image was made with."""
    return {"PATH": f"{VENV_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
            "LAUNCHER_CACHE_DIR": str(cache)}


@contextlib.contextmanager
def mount_points(*paths: str):
    """The manifest's mount paths, made on this machine for the test (empty folders), removed after."""
    made = []
    try:
        for p in paths:
            if not Path(p).exists():
                Path(p).mkdir(parents=True)
                made.append(Path(p))
        yield
    finally:
        for p in reversed(made):
            with contextlib.suppress(OSError):
                p.rmdir()


@contextlib.contextmanager
def hosts_file(namespace: str, entries: dict[str, str]):
    """/etc/hosts as the namespace's processes see it (`ip netns exec` mounts /etc/netns/NS/hosts there)."""
    folder = Path("/etc/netns") / namespace
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hosts").write_text("127.0.0.1 localhost\n" + "".join(f"{ip} {name}\n" for name, ip in entries.items()))
    try:
        yield
    finally:
        (folder / "hosts").unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            folder.rmdir()


def start_pod(namespace: str, name: str, mounts: dict[str, Path], env: dict[str, str], command: list[str],
              log: Path) -> subprocess.Popen:
    binds = "".join(f"mount --bind {shlex.quote(str(src))} {shlex.quote(dst)} && " for dst, src in mounts.items())
    inner = f"hostname {shlex.quote(name)} && {binds}exec env -i " + " ".join(
        shlex.quote(f"{k}={v}") for k, v in env.items()) + " " + " ".join(shlex.quote(a) for a in command)
    return subprocess.Popen(["ip", "netns", "exec", namespace, "unshare", "--uts", "sh", "-c", inner],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)


def stop_pod(proc: subprocess.Popen, grace: float = 30) -> None:
    """What the kubelet does: SIGTERM, the grace period, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
