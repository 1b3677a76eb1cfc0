"""Ports: free internal ones, and whether the public one is taken."""
from __future__ import annotations

import socket
from typing import Iterator


def free_ports(host: str = "127.0.0.1") -> Iterator[int]:
    """Ports the kernel hands out as free right now, never the same one twice."""
    seen: set[int] = set()
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
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
