"""A tiny but real GGUF file (header + one tensor) written with the gguf library."""
from pathlib import Path

import numpy as np
from gguf import GGUFWriter, LlamaFileType


def write_tiny_gguf(path: Path, context_length: int = 256, arch: str = "llama", experts: int = 0,
                    file_type: LlamaFileType = LlamaFileType.ALL_F32) -> Path:
    """`experts` > 0 makes it a mixture of experts (what ep_size > 1 asks of a model)."""
    w = GGUFWriter(str(path), arch)
    w.add_name("tiny")
    w.add_context_length(context_length)
    # Two layers, 8 wide, 2 heads sharing 1 KV head: K and V rows of 4 F16 values each per layer = 32 bytes/token.
    w.add_block_count(2)
    w.add_embedding_length(8)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    if experts:
        w.add_expert_count(experts)
        w.add_expert_used_count(min(2, experts))
    w.add_file_type(file_type)
    w.add_tensor("token_embd.weight", np.zeros((8, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
