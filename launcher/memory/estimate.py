"""How many bytes each device will hold, computed the way llama.cpp allocates them.

Pure: (ModelShape, Settings, devices) -> rows. The rules follow llama.cpp's source:
- layers: `i_gpu_start = n_layer + 1 - n_gpu_layers`; offloaded layer il goes to the first device whose
  cumulative tensor_split share exceeds (il - i_gpu_start) / offloaded (llama-model.cpp load_tensors);
  the input embedding always stays on the CPU; the output head counts as layer n_layer;
- KV cache: n_ctx padded to 256 cells; one unified stream when llama-server picks the slot count
  itself, else n_parallel streams of n_ctx / n_parallel; sliding-window layers keep
  n_swa x streams + n_ubatch cells (llama-kv-cache-iswa.cpp); MLA caches only the latent K row;
- compute: attention masks for every cache + the widest stage of one layer at n_ubatch tokens,
  fitted on Gemma 3 and checked against llama-server's own log (tests/e2e/test_memory_real.py).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from itertools import accumulate

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from .shape import ModelShape

MiB = 2**20
CELL_PAD = 256
SERVER_AUTO_SLOTS = 4   # llama-server's --parallel -1: 4 slots sharing one unified KV cache


def row_bytes(cache_type: str, n: int) -> int:
    block, size = GGML_QUANT_SIZES[GGMLQuantizationType[cache_type.upper()]]
    return n // block * size


def _pad(n: int, to: int = CELL_PAD) -> int:
    return (n + to - 1) // to * to


@dataclass(frozen=True)
class Settings:
    """The engine settings memory depends on, with the engine's defaults already filled in."""
    n_ctx: int
    n_seq: int = 1
    unified: bool = False
    n_batch: int = 2048
    n_ubatch: int = 512
    cache_k: str = "f16"
    cache_v: str = "f16"
    flash_attn: bool = True
    swa_full: bool = False
    n_gpu_layers: int | None = None     # None: all (the output layer too)
    split: tuple[float, ...] = ()       # per device; empty: equal (or proportional to memory)
    single_device: int | None = None    # split_mode none: everything on this index

    @property
    def ubatch(self) -> int:
        return min(self.n_ubatch, self.n_batch, _pad(self.n_ctx))


@dataclass(frozen=True)
class Cells:
    full: int     # cells of the full-context cache, all streams
    swa: int      # cells of the sliding-window cache, all streams
    full_stream: int
    swa_stream: int


def kv_cells(shape: ModelShape, s: Settings) -> Cells:
    n_ctx = _pad(s.n_ctx)
    streams = 1 if s.unified else s.n_seq
    per_stream = n_ctx if s.unified else _pad(n_ctx // s.n_seq)
    swa_stream = per_stream if s.swa_full else _pad(min(per_stream, shape.n_swa * (s.n_seq if s.unified else 1)
                                                         + s.n_ubatch))
    return Cells(per_stream * streams, swa_stream * streams if any(shape.swa_layers) else 0, per_stream,
                 swa_stream if any(shape.swa_layers) else 0)


def kv_row(shape: ModelShape, il: int, s: Settings) -> int:
    """Bytes one cache cell (token) takes in layer il."""
    kv = shape.n_head_kv[il] if il < len(shape.n_head_kv) else shape.n_head
    return row_bytes(s.cache_k, kv * shape.head_k) + (row_bytes(s.cache_v, kv * shape.head_v) if shape.head_v else 0)


def kv_bytes_per_token(shape: ModelShape, cache_k: str = "f16", cache_v: str = "f16") -> int:
    """Every layer's K+V row for one token (sliding-window layers included, as if their window were full)."""
    s = Settings(n_ctx=1, cache_k=cache_k, cache_v=cache_v)
    return sum(kv_row(shape, il, s) for il in range(shape.n_layer))


def layer_kv(shape: ModelShape, s: Settings) -> list[int]:
    cells = kv_cells(shape, s)
    return [kv_row(shape, il, s) * (cells.swa if shape.swa_layers[il] else cells.full) for il in range(shape.n_layer)]


def compute_bytes(shape: ModelShape, s: Settings) -> int:
    """One backend's compute buffer: the masks plus the widest stage of a layer at n_ubatch tokens."""
    u = s.ubatch
    cells = kv_cells(shape, s)
    mask = (cells.full_stream + cells.swa_stream) * u * (2 if s.flash_attn else 4)
    q_dim = shape.n_head * (shape.kv_lora_rank + shape.n_rot if shape.mla else shape.head_k)
    ff = max(shape.n_ff, shape.n_expert_used * shape.n_ff_exp + shape.n_ff_shexp)
    stage = u * 4 * (3 * ff + 3 * shape.n_embd + q_dim)
    if not s.flash_attn:  # the KQ matrix of the widest cache is materialised in F32
        stage = max(stage, u * 4 * (shape.n_head * cells.full_stream + 4 * q_dim + 2 * shape.n_embd))
    logits = min(u, s.n_seq) * shape.n_vocab * 4 + 2 * u * shape.n_embd * 4
    return mask + max(stage, logits)


def output_buffer(shape: ModelShape, s: Settings) -> int:
    """The host's logits buffer: one vocabulary row per sequence."""
    return s.n_seq * shape.n_vocab * 4


def place_layers(n_layer: int, n_gpu_layers: int | None, shares: list[float]) -> list[int | None]:
    """Device index (into shares) of layers 0..n_layer (the last is the output head), None for the CPU."""
    if not shares:
        return [None] * (n_layer + 1)
    ngl = n_layer + 1 if n_gpu_layers is None or n_gpu_layers < 0 else n_gpu_layers
    start = max(n_layer + 1 - ngl, 0)
    active = min(ngl, n_layer + 1)
    total = sum(shares) or len(shares)
    bounds = [x / total for x in accumulate(shares)] if sum(shares) else [(i + 1) / len(shares)
                                                                         for i in range(len(shares))]
    out: list[int | None] = []
    for il in range(n_layer + 1):
        if il < start or il - start >= active:
            out.append(None)
        else:
            out.append(min(bisect.bisect_right(bounds, (il - start) / active), len(shares) - 1))
    return out


@dataclass(frozen=True)
class DeviceUse:
    """One row of the memory plan: a device (or the host) and what it will hold, in bytes."""
    name: str                  # "NPU 4 (CANN0)", "host"
    device_id: int | None      # host numbering; None for the host
    layers: tuple[int, ...]    # repeating layers it holds (the output head is counted in weights)
    weights: int
    kv: int
    compute: int
    output: int = 0            # host: the logits buffer
    repack: int = 0            # host: ggml-cpu's repacked copies of some weight types
    capacity: int | None = None

    @property
    def total(self) -> int:
        return self.weights + self.kv + self.compute + self.output + self.repack

    @property
    def use(self) -> float | None:
        return self.total / self.capacity if self.capacity else None

    @property
    def layer_text(self) -> str:
        if not self.layers:
            return "-"
        first, last = self.layers[0], self.layers[-1]
        return f"{first}-{last}" if last - first + 1 == len(self.layers) else f"{len(self.layers)} layers"


def estimate(shape: ModelShape, s: Settings, devices: list[tuple[str, int | None, int | None]],
             host_capacity: int | None = None, host_repacks: bool = True) -> tuple[DeviceUse, ...]:
    """Rows for the host and each device (name, host id, capacity in bytes), for one engine process."""
    shares = list(s.split) if s.split else [float(c or 1) for _, _, c in devices]
    if s.single_device is not None and devices:
        shares = [1.0 if i == s.single_device else 0.0 for i in range(len(devices))]
    where = place_layers(shape.n_layer, s.n_gpu_layers, shares if devices else [])
    kv = layer_kv(shape, s)
    compute = compute_bytes(shape, s)
    rows = []
    for i, (name, dev_id, cap) in enumerate(devices):
        mine = tuple(il for il in range(shape.n_layer) if where[il] == i)
        weights = sum(shape.layer_bytes[il] for il in mine) + (shape.output_bytes + shape.output_copy if where[-1] == i else 0)
        if not mine and where[-1] != i:
            continue
        rows.append(DeviceUse(name, dev_id, mine, weights, sum(kv[il] for il in mine), compute, capacity=cap))
    host_layers = tuple(il for il in range(shape.n_layer) if where[il] is None)
    weights = shape.input_bytes + sum(shape.layer_bytes[il] for il in host_layers)
    repack = sum(shape.layer_repack[il] for il in host_layers)
    if where[-1] is None:
        weights += shape.output_bytes
        repack += shape.output_repack
    # The host's compute buffer is the whole graph's when it runs layers, else only the input stage's.
    host_compute = compute if host_layers or not devices else 2 * s.ubatch * shape.n_embd * 4
    host = DeviceUse("host", None, host_layers, weights, sum(kv[il] for il in host_layers), host_compute,
                     output_buffer(shape, s), repack if host_repacks else 0, host_capacity)
    return (host, *rows)
