"""A doctor's finding: ok, warn or error, what it is about, what was seen, and the fix."""
from __future__ import annotations

from dataclasses import dataclass

OK, WARN, ERROR = "ok", "warn", "error"


@dataclass(frozen=True)
class Finding:
    status: str
    subject: str
    detail: str
    fix: str = ""


def render(title: str, findings: list[Finding]) -> str:
    width = max([len(f.subject) for f in findings] + [8])
    lines = [f"launch doctor: {title}"]
    for f in findings:
        lines.append(f"  {f.status:<6} {f.subject:<{width}}  {f.detail}")
        if f.fix and f.status != OK:
            lines.append(f"  {'':<6} {'':<{width}}  fix: {f.fix}")
    errors = sum(f.status == ERROR for f in findings)
    warnings = sum(f.status == WARN for f in findings)
    lines.append(f"{errors} error(s), {warnings} warning(s)")
    return "\n".join(lines) + "\n"
