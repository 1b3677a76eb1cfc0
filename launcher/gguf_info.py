"""What launcher reads from a GGUF header, without loading the weights.

gguf's GGUFReader builds a numpy view of every field, which took 14 s on Gemma 3 270M (its
tokenizer has 262k strings). We need a handful of scalars and the tensor shapes, so this reads
the header sequentially and seeks past array contents. Types and enums come from the gguf package.
"""
from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO, Mapping, NamedTuple, Sequence

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType, LlamaFileType

GGUF_MAGIC = b"GGUF"
SMALL_ARRAY = 1024  # numeric arrays up to this length are read (per-layer keys); longer ones are skipped
_SCALAR = {GGUFValueType.UINT8: "B", GGUFValueType.INT8: "b", GGUFValueType.UINT16: "H",
           GGUFValueType.INT16: "h", GGUFValueType.UINT32: "I", GGUFValueType.INT32: "i",
           GGUFValueType.FLOAT32: "f", GGUFValueType.BOOL: "?", GGUFValueType.UINT64: "Q",
           GGUFValueType.INT64: "q", GGUFValueType.FLOAT64: "d"}


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


class _Reader:
    def __init__(self, fh: BinaryIO):
        self.fh = fh

    def unpack(self, fmt: str):
        size = struct.calcsize("<" + fmt)
        data = self.fh.read(size)
        if len(data) != size:
            raise ValueError("GGUF header is truncated")
        return struct.unpack("<" + fmt, data)[0]

    def string(self) -> str:
        return self.fh.read(self.unpack("Q")).decode("utf-8", errors="replace")

    def value(self, kind: int):
        kind = GGUFValueType(kind)
        if kind == GGUFValueType.STRING:
            return self.string()
        if kind == GGUFValueType.ARRAY:
            item, count = GGUFValueType(self.unpack("I")), self.unpack("Q")
            if item == GGUFValueType.STRING:
                for _ in range(count):  # skip: only lengths are read
                    self.fh.seek(self.unpack("Q"), 1)
            elif item == GGUFValueType.ARRAY:
                for _ in range(count):
                    self.value(GGUFValueType.ARRAY)
            elif count <= SMALL_ARRAY:  # per-layer values (head counts, sliding-window flags)
                return [self.unpack(_SCALAR[item]) for _ in range(count)]
            else:
                self.fh.seek(struct.calcsize("<" + _SCALAR[item]) * count, 1)
            return None
        return self.unpack(_SCALAR[kind])


class Tensor(NamedTuple):
    name: str
    dims: tuple[int, ...]
    type: int    # GGMLQuantizationType
    offset: int  # of its data, from the start of the data section

    @property
    def nbytes(self) -> int:
        """Bytes of its data in the file (and in a device buffer): elements / block size x block bytes."""
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType(self.type)]
        return math.prod(self.dims) // block * size

    @property
    def layer(self) -> int | None:
        """The repeating layer it belongs to (`blk.N.`), or None (embeddings, output, norms)."""
        if self.name.startswith("blk."):
            number = self.name.split(".", 2)[1]
            return int(number) if number.isdigit() else None
        return None


def read_header(path: str | Path) -> tuple[dict, list[Tensor]]:
    """(metadata, tensors). String arrays and long arrays are skipped (their value is None)."""
    with open(path, "rb") as fh:
        r = _Reader(fh)
        if fh.read(4) != GGUF_MAGIC:
            raise ValueError("not a GGUF file")
        version = r.unpack("I")
        if version < 2:
            raise ValueError(f"GGUF version {version} is too old")
        n_tensors, n_kv = r.unpack("Q"), r.unpack("Q")
        meta = {}
        for _ in range(n_kv):
            key = r.string()
            meta[key] = r.value(r.unpack("I"))
        tensors = []
        for _ in range(n_tensors):
            name = r.string()
            dims = tuple(r.unpack("Q") for _ in range(r.unpack("I")))
            kind, offset = r.unpack("I"), r.unpack("Q")
            tensors.append(Tensor(name, dims, kind, offset))
    return meta, tensors


def header_of(path: str | Path) -> tuple[Mapping, tuple[Tensor, ...]]:
    """read_header, kept while the file is unchanged: validation, the plan and the memory plan all ask for
    the same header, and a big model's tokenizer makes each read take a while."""
    st = os.stat(path)
    return _cached_header(os.path.realpath(path), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=16)
def _cached_header(path: str, mtime_ns: int, size: int) -> tuple[Mapping, tuple[Tensor, ...]]:
    meta, tensors = read_header(path)
    return MappingProxyType(meta), tuple(tensors)


def summarize(path: str | Path) -> GGUFSummary:
    return summary_of(*header_of(path))


def summary_of(meta: Mapping, tensors: Sequence[Tensor]) -> GGUFSummary:
    arch = meta.get("general.architecture")
    ftype = meta.get("general.file_type")
    try:
        quant = LlamaFileType(ftype).name.removeprefix("MOSTLY_").removeprefix("ALL_") if ftype is not None else None
    except ValueError:
        quant = str(ftype)
    params = sum(math.prod(t.dims) for t in tensors)
    return GGUFSummary(architecture=arch, name=meta.get("general.name"), parameters=params, quantization=quant,
                       context_length=meta.get(f"{arch}.context_length") if arch else None,
                       expert_count=int(meta.get(f"{arch}.expert_count") or 0) if arch else 0)
