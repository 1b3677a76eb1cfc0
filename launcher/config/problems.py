"""A config problem: where it is, what is wrong, and how to fix it."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    column: int
    path: tuple
    message: str
    value: Any = None
    hint: str = ""
    warning: bool = False  # printed, but does not stop the launch

    @property
    def dotted(self) -> str:
        return dotted(self.path)

    def format(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        label = "warning: " if self.warning else ""
        head = f"{where}: {label}{self.dotted or '(top level)'}: {self.message}"
        if self.value is not None:
            head += f" (got {_show(self.value)})"
        return head + (f"\n    hint: {self.hint}" if self.hint else "")


def dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
