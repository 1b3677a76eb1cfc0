"""A network namespace of its own for a test: loopback only, so a client can use the address a document
hard-codes (127.0.0.1:8080) whatever else runs on this machine. Needs root and `ip netns`."""
from __future__ import annotations

import contextlib
import itertools
import os
import subprocess

_count = itertools.count()


@contextlib.contextmanager
def network_namespace(hint: str):
    name = f"lt-{hint}-{os.getpid()}-{next(_count)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def in_namespace(name: str, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", name, *argv]
