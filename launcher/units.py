"""Sizes as people write them: `64g`, `32GiB`, `512m`, or a number of MiB."""
from __future__ import annotations

import re

SIZE_PATTERN = r"^\s*\d+(\.\d+)?\s*([kKmMgGtT]([iI]?[bB])?)?\s*$"
_FACTOR = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}


def size_mib(text: str | int | float) -> int:
    """MiB of a size; k/m/g/t are binary (1g = 1024 MiB), as npu-smi and nvidia-smi report memory."""
    if isinstance(text, (int, float)):
        return int(text)
    match = re.fullmatch(SIZE_PATTERN.strip("^$"), text)
    if not match:
        raise ValueError(f"{text!r} is not a size (e.g. 64g, 32GiB, 65536m)")
    number = float(re.match(r"\s*[\d.]+", text).group())
    unit = (match.group(2) or "m")[0].lower()
    return int(number * _FACTOR[unit])


def show_mib(mib: float) -> str:
    return f"{mib / 1024:.1f} GiB" if abs(mib) >= 1024 else f"{mib:.0f} MiB"
