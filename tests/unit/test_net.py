"""Internal ports: free, distinct, and outside the kernel's ephemeral range."""
import random
import socket
from itertools import islice

from launcher.net import ephemeral_range, free_ports


def test_internal_ports_are_free_distinct_and_below_the_ephemeral_range():
    low, _ = ephemeral_range()
    ports = list(islice(free_ports(), 50))
    assert len(set(ports)) == 50
    assert all(1024 <= p < low for p in ports), ports
    for port in ports[:5]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_a_busy_port_is_skipped():
    first = next(free_ports(rng=random.Random(7)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", first))
        s.listen()
        again = next(free_ports(rng=random.Random(7)))
    assert again != first


def test_the_gateways_own_ports_are_never_handed_to_an_engine():
    """The gateway binds its port after the plan is made: free then, it must not be planned for an engine
    (a fresh-clone CI run once gave llama-server the gateway's port)."""
    first = list(islice(free_ports(rng=random.Random(7)), 3))
    planned = list(islice(free_ports(rng=random.Random(7), exclude=(first[0], None)), 3))
    assert first[0] not in planned and planned[:2] == first[1:]


def test_range_file_is_read(tmp_path):
    f = tmp_path / "range"
    f.write_text("40000\t50000\n")
    assert ephemeral_range(f) == (40000, 50000)
    assert ephemeral_range(tmp_path / "missing") == (32768, 60999)
