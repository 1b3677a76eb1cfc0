"""Run cmake with a progress bar read from its `[ NN%]` lines; the full log goes to a file."""
from __future__ import annotations

import re
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Sequence

from ..errors import BuildError

_PERCENT = re.compile(r"^\[\s*(\d+)%\]")


class Progress:
    """A one-line bar on a terminal; a line per 10% step otherwise (CI logs stay short)."""

    def __init__(self, label: str, stream=sys.stderr):
        self.label, self.stream, self.last = label, stream, -1
        self.tty = stream.isatty()

    def update(self, percent: int) -> None:
        if percent <= self.last:
            return
        if self.tty:
            filled = percent * 30 // 100
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {percent:3d}%")
            self.stream.flush()
        elif percent // 10 > max(self.last, 0) // 10 or self.last < 0:
            self.stream.write(f"{self.label}: {percent}%\n")
        self.last = percent

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")


def run_logged(argv: Sequence[str], log: Path, progress: Progress | None = None, env=None) -> None:
    """Run argv, append everything to `log`; on failure raise with the last 40 lines."""
    tail: deque[str] = deque(maxlen=40)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write("$ " + " ".join(argv) + "\n")
        fh.flush()
        try:
            proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    env=env, errors="replace")
        except OSError as exc:
            raise BuildError(f"cannot run {argv[0]}: {exc.strerror}", "", str(log)) from exc
        assert proc.stdout is not None
        for line in proc.stdout:
            fh.write(line)
            tail.append(line.rstrip("\n"))
            match = _PERCENT.match(line)
            if match and progress:
                progress.update(int(match.group(1)))
        code = proc.wait()
    if progress:
        progress.done()
    if code != 0:
        raise BuildError(f"{Path(argv[0]).name} {argv[1] if len(argv) > 1 else ''} failed (exit {code})",
                         "\n".join(tail), str(log))
