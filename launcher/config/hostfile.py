"""Open MPI hostfiles: `host [slots=N] [max_slots=M]` per line, `#` comments. Ranks fill each host's
slots in file order (Open MPI's default `--map-by slot`), so the planner can say which rank runs where."""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

_LINE = re.compile(r"^(?P<host>[A-Za-z0-9_.:\[\]-]+)(?P<rest>(\s+\w+\s*=\s*\d+)*)\s*$")


@dataclass(frozen=True)
class HostEntry:
    host: str
    slots: int
    line: int
    slots_given: bool = True


@dataclass(frozen=True)
class Hostfile:
    entries: tuple[HostEntry, ...]
    errors: tuple[str, ...] = ()

    @property
    def hosts(self) -> tuple[str, ...]:
        """Each host once, in file order (a host named twice adds its slots)."""
        return tuple(dict.fromkeys(e.host for e in self.entries))

    def slots(self, host: str) -> int:
        return sum(e.slots for e in self.entries if e.host == host)

    @property
    def total_slots(self) -> int:
        return sum(e.slots for e in self.entries)

    def rank_hosts(self, ranks: int) -> list[str]:
        """The host of each rank under `--map-by slot`; past the slots (oversubscribed) it wraps around."""
        order = [h for h in self.hosts for _ in range(self.slots(h))] or ["localhost"]
        return [order[r % len(order)] for r in range(ranks)]

    def ranks_on(self, host: str, ranks: int) -> list[int]:
        return [r for r, h in enumerate(self.rank_hosts(ranks)) if h == host]


def from_pairs(hosts: tuple[tuple[str, int], ...]) -> Hostfile:
    return Hostfile(tuple(HostEntry(h, n, 0) for h, n in hosts))


def parse_hostfile(text: str) -> Hostfile:
    entries, errors = [], []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _LINE.match(line)
        if not match:
            errors.append(f"line {number}: {raw.strip()!r} is not `host [slots=N]`")
            continue
        options = dict((k.strip(), int(v)) for k, v in re.findall(r"(\w+)\s*=\s*(\d+)", match.group("rest")))
        unknown = set(options) - {"slots", "max_slots", "max-slots"}
        if unknown:
            errors.append(f"line {number}: unknown option {', '.join(sorted(unknown))}")
        # Without slots Open MPI counts the host's cores, which only that host knows: one is assumed here.
        entries.append(HostEntry(match.group("host"), options.get("slots", 1), number, "slots" in options))
    return Hostfile(tuple(entries), tuple(errors))


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False
