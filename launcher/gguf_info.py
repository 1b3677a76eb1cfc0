"""What launcher reads from a GGUF header, without loading the weights."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

GGUF_MAGIC = b"GGUF"


def read_magic(path: str | Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(4)


@dataclass(frozen=True)
class GGUFSummary:
    architecture: str | None
    name: str | None
    parameters: int
    quantization: str | None
    context_length: int | None
    expert_count: int


def summarize(path: str | Path) -> GGUFSummary:
    from gguf import GGUFReader, LlamaFileType  # import is slow; only when asked

    reader = GGUFReader(str(path), "r")

    def field(key: str):
        f = reader.fields.get(key)
        return None if f is None else f.contents()

    arch = field("general.architecture")
    ftype = field("general.file_type")
    try:
        quant = LlamaFileType(ftype).name.removeprefix("MOSTLY_").removeprefix("ALL_") if ftype is not None else None
    except ValueError:
        quant = str(ftype)
    params = sum(int(t.n_elements) for t in reader.tensors)
    return GGUFSummary(
        architecture=arch,
        name=field("general.name"),
        parameters=params,
        quantization=quant,
        context_length=field(f"{arch}.context_length") if arch else None,
        expert_count=int(field(f"{arch}.expert_count") or 0) if arch else 0,
    )


def expert_count(path: str | Path) -> int:
    return summarize(path).expert_count
