"""Processes as /proc shows them: whether one is alive, and a process's descendants (supervise/proctree.py adds
what launcher's supervision needs on top)."""
from __future__ import annotations

from pathlib import Path


def _stat_fields(pid: int) -> list[str]:
    # the command may contain spaces and parentheses: the fields after the last ')' are fixed
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        return _stat_fields(pid)[0] != "Z"
    except (OSError, IndexError):
        return False


def descendants(pid: int) -> set[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(_stat_fields(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found
