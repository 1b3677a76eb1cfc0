"""GGUF files in a folder, with what their headers say. Symlinks that leave the folder are skipped."""
from __future__ import annotations

from pathlib import Path

from ..gguf_info import GGUF_MAGIC, read_magic, summarize


def list_gguf(folder: str | Path) -> list[dict]:
    root = Path(folder).resolve()
    out = []
    for path in sorted(root.rglob("*.gguf")):
        real = path.resolve()
        if not real.is_relative_to(root) or not real.is_file():
            continue
        entry = {"name": path.stem, "path": str(path.relative_to(root)), "size": real.stat().st_size}
        try:
            if read_magic(real) != GGUF_MAGIC:
                raise ValueError("no GGUF magic")
            info = summarize(real)
            entry.update(architecture=info.architecture, parameters=info.parameters,
                         quantization=info.quantization, context_length=info.context_length)
        except (OSError, ValueError, KeyError, OverflowError) as exc:  # damaged: listed with the reason
            entry["error"] = f"cannot read GGUF header: {exc}"
        out.append(entry)
    return out


def format_table(entries: list[dict]) -> str:
    rows = [("NAME", "SIZE", "ARCH", "PARAMS", "QUANT", "CTX", "PATH")]
    for e in entries:
        params = e.get("parameters")
        rows.append((e["name"], f"{e['size'] / 2**20:.0f} MiB", str(e.get("architecture", "?")),
                     f"{params / 1e6:.0f}M" if params else "?", str(e.get("quantization", "?")),
                     str(e.get("context_length", "?")), e["path"] + (f"  ({e['error']})" if "error" in e else "")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
