"""A network namespace of its own for a test: loopback only, so a client can use the address a document
hard-codes (127.0.0.1:8080) whatever else runs on this machine. Needs root and `ip netns`."""
from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
from typing import NamedTuple

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


class Hosts(NamedTuple):
    namespaces: tuple[str, str]
    addresses: tuple[str, str]     # each host's address on the link between them
    reachable: str                 # the first host's address on the link to the test's namespace
    links: tuple[str, str]         # each host's end of the link between them


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True)


@contextlib.contextmanager
def two_hosts(hint: str):
    """Two namespaces as two "hosts" joined by a veth pair (10.R.S.1 and 10.R.S.2), plus a link from this
    namespace to the first (10.R.T.254 here, 10.R.T.1 there) so a test can reach a server bound there.
    Yields Hosts."""
    n = next(_count)
    tag = f"{os.getpid() % 10000}{n}"
    a, b = f"lh-{hint}-{tag}a", f"lh-{hint}-{tag}b"
    net = f"10.{200 + n % 50}.{os.getpid() % 250}"
    test_net = f"10.{200 + n % 50}.{(os.getpid() + 1) % 250}"
    links = (f"la{tag}", f"lb{tag}", f"lt{tag}", f"lu{tag}")
    made: list[str] = []
    try:
        for ns in (a, b):
            _ip("netns", "add", ns)
            made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("link", "add", links[0], "type", "veth", "peer", "name", links[1])
        _ip("link", "set", links[0], "netns", a)
        _ip("link", "set", links[1], "netns", b)
        _ip("-n", a, "addr", "add", f"{net}.1/24", "dev", links[0])
        _ip("-n", b, "addr", "add", f"{net}.2/24", "dev", links[1])
        _ip("link", "add", links[2], "type", "veth", "peer", "name", links[3])
        _ip("link", "set", links[3], "netns", a)
        _ip("addr", "add", f"{test_net}.254/24", "dev", links[2])
        _ip("-n", a, "addr", "add", f"{test_net}.1/24", "dev", links[3])
        for ns, link in ((a, links[0]), (b, links[1]), (a, links[3])):
            _ip("-n", ns, "link", "set", link, "up")
        _ip("link", "set", links[2], "up")
        yield Hosts((a, b), (f"{net}.1", f"{net}.2"), f"{test_net}.1", (links[0], links[1]))
    finally:
        subprocess.run(["ip", "link", "del", links[2]], check=False, capture_output=True)
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], check=False)


def rx_bytes(ns: str, link: str) -> int:
    """Bytes a namespace's link has received."""
    out = subprocess.run(["ip", "netns", "exec", ns, "cat", f"/sys/class/net/{link}/statistics/rx_bytes"],
                         capture_output=True, text=True, check=True).stdout
    return int(out)
