"""Synthetic GGUF headers whose memory answers are known by hand: DeepSeek-V2 / V2-Lite (MLA, MoE experts),
Qwen2-7B (GQA), Gemma 2 9B (sliding windows), Gemma 3 270M. Shared by the memory plan's and the placement's
tests."""
import math

from gguf import GGML_QUANT_SIZES
from gguf import GGMLQuantizationType as T

from launcher.gguf_info import Tensor
from launcher.memory.shape import ModelShape


def tensor(name, dims, kind=T.F16):
    return Tensor(name, tuple(dims), int(kind), 0)


def nbytes(dims, kind=T.F16):
    block, size = GGML_QUANT_SIZES[kind]
    return math.prod(dims) // block * size


def deepseek2(n_layer=27, n_embd=2048, n_head=16, mla=True, experts=64, expert_type=T.Q4_0):
    arch = "deepseek2"
    meta = {"general.architecture": arch, f"{arch}.block_count": n_layer, f"{arch}.embedding_length": n_embd,
            f"{arch}.attention.head_count": n_head, f"{arch}.attention.kv_lora_rank": 512,
            f"{arch}.rope.dimension_count": 64, f"{arch}.expert_count": experts, f"{arch}.expert_used_count": 6,
            f"{arch}.expert_feed_forward_length": 1408, f"{arch}.expert_shared_count": 2,
            f"{arch}.feed_forward_length": 10944, f"{arch}.context_length": 163840}
    if mla:  # converted after llama.cpp's MLA change: one KV head of latent (512) + rope (64)
        meta.update({f"{arch}.attention.head_count_kv": 1, f"{arch}.attention.key_length": 576,
                     f"{arch}.attention.value_length": 512, f"{arch}.attention.key_length_mla": 192,
                     f"{arch}.attention.value_length_mla": 128})
    else:
        meta.update({f"{arch}.attention.head_count_kv": n_head, f"{arch}.attention.key_length": 192,
                     f"{arch}.attention.value_length": 128})
    tensors = [tensor("token_embd.weight", (n_embd, 102400), T.Q8_0), tensor("output.weight", (n_embd, 102400), T.Q8_0),
               tensor("output_norm.weight", (n_embd,), T.F32)]
    for il in range(n_layer):
        tensors += [tensor(f"blk.{il}.attn_kv_a_mqa.weight", (n_embd, 576), T.Q8_0),
                    tensor(f"blk.{il}.ffn_gate_exps.weight", (n_embd, 1408, experts), expert_type),
                    tensor(f"blk.{il}.ffn_up_exps.weight", (n_embd, 1408, experts), expert_type)]
    return ModelShape.from_header(meta, tensors)


def qwen2_7b():
    arch = "qwen2"
    meta = {"general.architecture": arch, f"{arch}.block_count": 28, f"{arch}.embedding_length": 3584,
            f"{arch}.attention.head_count": 28, f"{arch}.attention.head_count_kv": 4,
            f"{arch}.feed_forward_length": 18944, f"{arch}.context_length": 32768}
    tensors = [tensor("token_embd.weight", (3584, 152064), T.Q8_0), tensor("output.weight", (3584, 152064), T.Q8_0)]
    tensors += [tensor(f"blk.{il}.attn_q.weight", (3584, 3584), T.Q8_0) for il in range(28)]
    return ModelShape.from_header(meta, tensors)


def gemma2_9b():
    arch = "gemma2"
    meta = {"general.architecture": arch, f"{arch}.block_count": 42, f"{arch}.embedding_length": 3584,
            f"{arch}.attention.head_count": 16, f"{arch}.attention.head_count_kv": 8,
            f"{arch}.attention.key_length": 256, f"{arch}.attention.value_length": 256,
            f"{arch}.attention.sliding_window": 4096, f"{arch}.feed_forward_length": 14336,
            f"{arch}.context_length": 8192}
    return ModelShape.from_header(meta, [tensor("token_embd.weight", (3584, 256000), T.Q8_0)])


def deepseek_v2_lite_q8_0() -> ModelShape:
    return deepseek2(expert_type=T.Q8_0)


def deepseek_v2_q4_0() -> ModelShape:
    """DeepSeek-V2 (236B): 60 layers, 160 experts; its experts in Q4_0 make about 78 GB."""
    return deepseek2(n_layer=60, n_embd=5120, n_head=128, experts=160)
