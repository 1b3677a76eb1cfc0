"""Room on the devices at run time: the bytes each placed model holds on each device (its memory plan, from the
placement), against the devices' sizes less what other processes held when launch planned. An on-demand load
evicts the fewest idle models, least recently used first, whose going makes room for the new one (pool.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Iterable

Device = tuple[str, int]   # (backend, device id)


@dataclass
class Room:
    capacity: dict[Device, int] = field(default_factory=dict)
    foreign: dict[Device, int] = field(default_factory=dict)
    need: dict[str, dict[Device, int]] = field(default_factory=dict)   # model -> device -> bytes

    @classmethod
    def from_placements(cls, placements: Iterable) -> "Room":
        room = cls()
        for p in placements:
            for d, b in p.capacity:
                room.capacity[(p.backend, d)] = b
            for d, b in p.foreign:
                room.foreign[(p.backend, d)] = b
            for placed in p.placed:
                room.need[placed.model] = {(p.backend, d): b for d, b in placed.bytes}
        return room

    def free(self, loaded: Iterable[str]) -> dict[Device, int]:
        out = {d: cap - self.foreign.get(d, 0) for d, cap in self.capacity.items()}
        for name in loaded:
            for d, b in self.need.get(name, {}).items():
                out[d] = out.get(d, 0) - b
        return out

    def fits(self, model: str, loaded: Iterable[str]) -> bool:
        free = self.free(m for m in loaded if m != model)
        return all(b <= free.get(d, 0) for d, b in self.need.get(model, {}).items())

    def victims(self, model: str, loaded: list[str], idle_lru: list[str]) -> list[str] | None:
        """The fewest of `idle_lru` (least recently used first) to unload so that `model` fits, preferring the
        least recently used among sets of one size; [] when it fits already, None when no set of them does."""
        if self.fits(model, loaded):
            return []
        mine = set(self.need.get(model, {}))
        sharing = [m for m in idle_lru if mine & set(self.need.get(m, {}))]   # only those on its devices help
        for k in range(1, len(sharing) + 1):
            for chosen in combinations(sharing, k):   # in LRU order: the first that works is the oldest set
                if self.fits(model, [m for m in loaded if m not in chosen]):
                    return list(chosen)
        return None

    def of(self, model: str) -> dict[str, int]:
        """For status pages: bytes per device, as "cann:0"."""
        return {f"{b}:{d}": n for (b, d), n in self.need.get(model, {}).items()}
