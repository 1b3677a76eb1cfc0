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
    assert [n for n, _ in tensors] == [t.name for t in ref.tensors]
    assert [math.prod(d) for _, d in tensors] == [int(t.n_elements) for t in ref.tensors]
    s = summarize(path)
    assert (s.architecture, s.parameters, s.quantization, s.context_length) == ("llama", 64, "F32", 4096)
