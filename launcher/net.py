"""Ports: free internal ones, and whether the public one is taken."""
from __future__ import annotations

import random
import socket
from pathlib import Path
from typing import Iterator

# Internal ports come from just below the kernel's ephemeral range: a port the kernel hands out for
# bind(0) sits inside that range, and between our probe closing it and the engine binding it, any
# outgoing connection on the machine may take it as its local port ("address already in use").
# Below the range the kernel never picks ports by itself, so only another explicit binder can race.
_SPAN = 8000
_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_range(path: Path = _RANGE_FILE) -> tuple[int, int]:
    try:
        low, high = (int(x) for x in path.read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _kernel_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_ports(host: str = "127.0.0.1", rng: random.Random | None = None, exclude=()) -> Iterator[int]:
    """Ports free right now, outside the ephemeral range where possible, never the same one twice and never
    one of `exclude` (the gateway's own ports, free until it binds them after planning)."""
    rng = rng or random.Random()
    low = ephemeral_range()[0]
    pool = range(max(1024, low - _SPAN), low)
    seen: set[int] = {p for p in exclude if p}
    while True:
        port = 0
        for _ in range(64):
            candidate = rng.choice(pool) if len(pool) > 256 else 0
            if candidate and candidate not in seen and _bindable(host, candidate):
                port = candidate
                break
        if not port:  # ephemeral range starts too low to leave room, or everything probed was busy
            port = _kernel_port(host)
        if port not in seen:
            seen.add(port)
            yield port


def port_in_use(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False
