"""GGUF files in a folder, with what their headers say.

Entries have the Llama Switch document's fields (`name` the file name, `path` absolute, `size` in
bytes) and launcher's header facts beside them. Symlinks inside the folder are followed wherever they
point (model stores and Hugging Face caches are symlink farms); a damaged file is listed with the
reason, not hidden.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..gguf_info import GGUF_MAGIC, header_of, read_magic, summary_of
from ..memory.estimate import kv_bytes_per_token
from ..memory.shape import ModelShape


def list_gguf(folder: str | Path) -> list[dict]:
    root = Path(os.path.abspath(folder))
    out = []
    for path in sorted(root.rglob("*.gguf")):
        if not path.is_file():  # a dangling link, or a folder named *.gguf
            continue
        entry = {"name": path.name, "path": str(path), "size": path.stat().st_size}
        try:
            if read_magic(path) != GGUF_MAGIC:
                raise ValueError("no GGUF magic")
            meta, tensors = header_of(path)
            info, shape = summary_of(meta, tensors), ModelShape.from_header(meta, tensors)
            entry.update(architecture=info.architecture, parameters=info.parameters,
                         quantization=info.quantization, context_length=info.context_length,
                         weights_bytes=shape.weight_bytes, kv_bytes_per_token=kv_bytes_per_token(shape))
        except (OSError, ValueError, KeyError, OverflowError) as exc:
            entry["error"] = f"cannot read GGUF header: {exc}"
        out.append(entry)
    return out


def format_table(entries: list[dict]) -> str:
    rows = [("NAME", "SIZE", "ARCH", "PARAMS", "QUANT", "CTX", "WEIGHTS", "KV/TOKEN", "PATH")]
    for e in entries:
        params = e.get("parameters")
        rows.append((e["name"], f"{e['size'] / 2**20:.0f} MiB", str(e.get("architecture", "?")),
                     f"{params / 1e6:.0f}M" if params else "?", str(e.get("quantization", "?")),
                     str(e.get("context_length", "?")),
                     f"{e['weights_bytes'] / 2**20:.0f} MiB" if "weights_bytes" in e else "?",
                     f"{e['kv_bytes_per_token'] / 1024:.1f} KiB" if "kv_bytes_per_token" in e else "?", e["path"] + (f"  ({e['error']})" if "error" in e else "")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
