"""What memory planning needs from a GGUF header: the layer stack, the attention shapes (GQA, MLA,
sliding windows), experts, and the bytes of every tensor by where llama.cpp puts it.

Pure: `ModelShape.from_header(meta, tensors)` takes what `gguf_info.header_of` returns.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

from gguf import GGMLQuantizationType

from ..gguf_info import Tensor, header_of

# Architectures whose sliding-window layers llama.cpp lays out by a fixed pattern when the file does not
# say (models/*.cpp: load_swa_pattern(ml, N[, dense_first])): every Nth layer is global.
SWA_PATTERN = {"gemma2": (2, False), "gemma3": (6, False), "gemma3n": (5, False), "gemma-embedding": (6, False),
               "cohere2": (4, False), "gpt-oss": (2, False), "exaone4": (4, False), "olmo2": (4, False),
               "llama4": (4, False), "smallthinker": (4, True), "modern-bert": (3, True)}
# Weight types ggml-cpu repacks into interleaved copies (a second, CPU_REPACK buffer) on x86 AVX2 / ARM.
CPU_REPACK_TYPES = {GGMLQuantizationType.Q4_0, GGMLQuantizationType.Q4_K, GGMLQuantizationType.IQ4_NL}
INPUT_TENSORS = ("token_embd.", "token_types.", "position_embd.")


@dataclass(frozen=True)
class ModelShape:
    arch: str
    n_layer: int
    n_embd: int
    n_vocab: int
    n_head: int
    n_head_kv: tuple[int, ...]       # per layer
    head_k: int                       # K length per KV head (MLA: kv_lora_rank + rope dims)
    head_v: int                       # V length per KV head (MLA: 0, V is a view of the latent K)
    n_ff: int                         # widest dense feed-forward
    n_expert: int
    n_expert_used: int
    n_ff_exp: int
    n_ff_shexp: int
    mla: bool
    kv_lora_rank: int
    n_rot: int
    n_swa: int                        # sliding window, 0: none
    swa_layers: tuple[bool, ...]      # per layer
    context_length: int
    layer_bytes: tuple[int, ...]      # weights of blk.N
    layer_repack: tuple[int, ...]     # of those, bytes ggml-cpu repacks when the layer is on the CPU
    layer_experts: tuple[int, ...]    # of those, bytes of the routed experts (`*_exps`)
    input_bytes: int                  # token embeddings: always on the CPU
    output_bytes: int                 # output norm + output head
    output_repack: int
    output_copy: int                  # tied head: llama.cpp loads the embedding again for an offloaded output
    recurrent: bool                   # SSM / RWKV state is not a KV cache: not estimated
    n_params: int = 0

    @property
    def weight_bytes(self) -> int:
        """Bytes of every tensor in the file."""
        return sum(self.layer_bytes) + self.input_bytes + self.output_bytes

    def requantized(self, factor: float) -> "ModelShape":
        """The same model with every weight `factor` times its size (another quantization)."""
        def scale(n: int) -> int:
            return int(n * factor)
        return replace(self, layer_bytes=tuple(map(scale, self.layer_bytes)),
                       layer_experts=tuple(map(scale, self.layer_experts)), layer_repack=(0,) * self.n_layer,
                       input_bytes=scale(self.input_bytes), output_bytes=scale(self.output_bytes),
                       output_copy=scale(self.output_copy), output_repack=0)

    @classmethod
    def from_file(cls, path: str | Path) -> "ModelShape":
        return cls.from_header(*header_of(path))

    @classmethod
    def from_header(cls, meta: Mapping, tensors: Sequence[Tensor]) -> "ModelShape":
        arch = meta.get("general.architecture") or "llama"

        def key(name: str, default=0):
            value = meta.get(f"{arch}.{name}")
            return default if value is None else value

        n_layer = int(key("block_count"))
        n_embd = int(key("embedding_length"))
        n_head = int(key("attention.head_count", 0) or 0)
        kv = key("attention.head_count_kv", None)
        n_head_kv = tuple(kv) if isinstance(kv, (list, tuple)) else (int(kv if kv is not None else n_head),) * n_layer
        head_k = int(key("attention.key_length", 0) or (n_embd // n_head if n_head else 0))
        head_v = int(key("attention.value_length", 0) or (n_embd // n_head if n_head else 0))
        mla = bool(key("attention.key_length_mla", 0)) and bool(key("attention.value_length_mla", 0))
        kv_lora = int(key("attention.kv_lora_rank", 0))
        n_rot = int(key("rope.dimension_count", 0) or head_k)
        if mla:  # llama.cpp caches only the compressed latent + the rope part, as one K row; V is a view of it
            head_v = 0
        n_swa = int(key("attention.sliding_window", 0) or 0)
        swa_layers = _swa_layers(arch, n_layer, n_swa, key("attention.sliding_window_pattern", None))
        ff = key("feed_forward_length", 0)
        n_ff = max(ff) if isinstance(ff, (list, tuple)) else int(ff)

        layer_bytes, layer_repack, layer_experts = [0] * n_layer, [0] * n_layer, [0] * n_layer
        input_bytes = output_bytes = output_repack = 0
        names = set()
        for t in tensors:
            names.add(t.name)
            repack = t.nbytes if t.type in CPU_REPACK_TYPES and len(t.dims) == 2 else 0
            if t.layer is not None and t.layer < n_layer:
                layer_bytes[t.layer] += t.nbytes
                layer_repack[t.layer] += repack
                layer_experts[t.layer] += t.nbytes if "_exps." in t.name else 0
            elif t.name.startswith(INPUT_TENSORS):
                input_bytes += t.nbytes
            else:  # output norm, output head, and the rest llama.cpp keeps with the output layer
                output_bytes += t.nbytes
                output_repack += repack
        embd = next((t for t in tensors if t.name == "token_embd.weight"), None)
        # No output head: llama.cpp uses the embedding, loaded a second time (TENSOR_DUPLICATED) where the output
        # layer lives; on the CPU both are the same mapped bytes.
        copy = embd.nbytes if "output.weight" not in names and embd is not None else 0
        n_vocab = embd.dims[1] if embd is not None and len(embd.dims) > 1 else 0
        recurrent = any(k.startswith(f"{arch}.ssm.") or k.startswith(f"{arch}.rwkv.") for k in meta)
        return cls(arch=arch, n_layer=n_layer, n_embd=n_embd, n_vocab=n_vocab, n_head=n_head,
                   n_head_kv=n_head_kv[:n_layer], head_k=head_k, head_v=head_v, n_ff=n_ff,
                   n_expert=int(key("expert_count", 0)), n_expert_used=int(key("expert_used_count", 0)),
                   n_ff_exp=int(key("expert_feed_forward_length", 0)),
                   n_ff_shexp=int(key("expert_shared_feed_forward_length", 0) or
                                  int(key("expert_feed_forward_length", 0)) * int(key("expert_shared_count", 0))),
                   mla=mla, kv_lora_rank=kv_lora, n_rot=n_rot, n_swa=n_swa, swa_layers=swa_layers,
                   context_length=int(key("context_length", 0) or 4096), layer_bytes=tuple(layer_bytes),
                   layer_repack=tuple(layer_repack), layer_experts=tuple(layer_experts), input_bytes=input_bytes, output_bytes=output_bytes,
                   output_repack=output_repack, output_copy=copy, recurrent=recurrent,
                   n_params=sum(math.prod(t.dims) for t in tensors))


def _swa_layers(arch: str, n_layer: int, n_swa: int, pattern) -> tuple[bool, ...]:
    if not n_swa:
        return (False,) * n_layer
    if isinstance(pattern, (list, tuple)):  # per-layer flags in the file
        return tuple(bool(x) for x in pattern[:n_layer])
    n, dense_first = SWA_PATTERN.get(arch, (0, False))
    if isinstance(pattern, int):
        n = pattern
    if n == 0:
        return (True,) * n_layer if arch in SWA_PATTERN or pattern is not None else (False,) * n_layer
    if dense_first:
        return tuple(il % n != 0 for il in range(n_layer))
    return tuple(il % n < n - 1 for il in range(n_layer))
