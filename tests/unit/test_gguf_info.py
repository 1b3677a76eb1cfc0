"""Tier 1: the fast GGUF header reader agrees with the gguf package's own reader."""
import math

from gguf import GGUFReader

from launcher.gguf_info import read_header, summarize
from tests.unit.gguf_fixture import write_tiny_gguf


def test_fast_reader_matches_gguf_reader(tmp_path):
    path = write_tiny_gguf(tmp_path / "t.gguf", context_length=4096)
    meta, tensors = read_header(path)
    ref = GGUFReader(str(path))
    assert meta["general.architecture"] == ref.fields["general.architecture"].contents()
    assert meta["llama.context_length"] == ref.fields["llama.context_length"].contents() == 4096
    assert [t.name for t in tensors] == [t.name for t in ref.tensors]
    assert [math.prod(t.dims) for t in tensors] == [int(t.n_elements) for t in ref.tensors]
    assert [t.nbytes for t in tensors] == [int(t.n_bytes) for t in ref.tensors]
    s = summarize(path)
    assert (s.architecture, s.parameters, s.quantization, s.context_length) == ("llama", 64, "F32", 4096)


def test_tensor_bytes_match_the_file_layout_of_the_real_gemma():
    """Each tensor's size from its type and shape, padded to the file's alignment, is the distance to the
    next tensor's data: the sizes llama.cpp's buffers are made of."""
    from launcher.models.embedded import ensure
    meta, tensors = read_header(ensure("gemma3-270m"))
    align = int(meta.get("general.alignment") or 32)
    ordered = sorted(tensors, key=lambda t: t.offset)
    gaps = [b.offset - a.offset for a, b in zip(ordered, ordered[1:])]
    assert gaps == [-(-t.nbytes // align) * align for t in ordered[:-1]]
    assert len({t.type for t in tensors}) >= 3  # several quantization types: Q4_K, Q6_K, F32 ...
    assert {t.layer for t in tensors} - {None} == set(range(meta["gemma3.block_count"]))
