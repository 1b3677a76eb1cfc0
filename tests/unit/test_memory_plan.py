"""The memory plan on synthetic GGUF headers whose answers are known by hand: DeepSeek-V2 / V2-Lite
(MLA, MoE experts), Qwen2 (GQA), Gemma 2 (sliding windows), and llama.cpp's layer placement."""

import pytest
from gguf import GGMLQuantizationType as T

from launcher.devices import DeviceSet
from launcher.memory.estimate import MiB, Settings, estimate, kv_bytes_per_token, kv_cells, layer_kv, place_layers
from launcher.memory.plan import plan_memory, settings_for
from launcher.plan.layout import engine_groups
from launcher.validate import load_source
from launcher.validate.fixes import fixes
from tests.fakes.shapes import deepseek2, gemma2_9b, nbytes, qwen2_7b, tensor  # noqa: F401


def test_deepseek_v2_lite_mla_caches_one_latent_row_per_layer():
    shape = deepseek2()
    assert shape.mla and shape.head_k == 576 and shape.head_v == 0
    assert kv_bytes_per_token(shape) == 27 * 576 * 2 == 31_104
    s = Settings(n_ctx=4096, n_seq=4, unified=True)
    assert sum(layer_kv(shape, s)) == 4096 * 31_104
    assert kv_bytes_per_token(shape, "q8_0") == 27 * 576 // 32 * 34


def test_deepseek_v2_lite_without_mla_keys_caches_full_heads():
    shape = deepseek2(mla=False)
    assert not shape.mla
    assert kv_bytes_per_token(shape) == 27 * (16 * 192 + 16 * 128) * 2 == 276_480


def test_deepseek_v2_236b_kv_per_token():
    assert kv_bytes_per_token(deepseek2(n_layer=60, n_embd=5120, n_head=128, experts=160)) == 60 * 1152


def test_moe_experts_are_counted_per_layer():
    shape = deepseek2()
    per_layer = nbytes((2048, 576), T.Q8_0) + 2 * nbytes((2048, 1408, 64), T.Q4_0)
    assert shape.layer_bytes == (per_layer,) * 27
    assert shape.layer_experts == (2 * nbytes((2048, 1408, 64), T.Q4_0),) * 27
    assert shape.n_expert == 64 and shape.n_expert_used == 6 and shape.n_ff_shexp == 2 * 1408
    assert shape.output_copy == 0  # it has its own output head


def test_qwen2_gqa_kv_cache_at_32k():
    shape = qwen2_7b()
    assert kv_bytes_per_token(shape) == 28 * 2 * 4 * 128 * 2 == 57_344
    s = Settings(n_ctx=32768, n_seq=1)
    assert sum(layer_kv(shape, s)) == 32768 * 57_344 == 1792 * MiB


def test_gemma2_sliding_window_layers_keep_window_plus_ubatch_cells():
    shape = gemma2_9b()
    assert shape.swa_layers == tuple(il % 2 == 0 for il in range(42))  # llama.cpp: pattern 2, every 2nd global
    s = Settings(n_ctx=8192, n_seq=1, n_ubatch=512)
    cells = kv_cells(shape, s)
    assert (cells.full, cells.swa) == (8192, 4608)   # pad256(min(8192, 4096 + 512))
    per_layer = 8 * 256 * 2 * 2
    assert sum(layer_kv(shape, s)) == 21 * per_layer * 8192 + 21 * per_layer * 4608
    assert kv_cells(shape, Settings(n_ctx=8192, n_seq=1, swa_full=True)).swa == 8192


def test_unified_and_per_slot_streams():
    shape = gemma2_9b()
    unified = kv_cells(shape, Settings(n_ctx=8192, n_seq=4, unified=True))
    assert (unified.full, unified.swa) == (8192, 8192)    # min(8192, 4096 x 4 + 512)
    split = kv_cells(shape, Settings(n_ctx=8192, n_seq=4))
    assert (split.full, split.swa, split.full_stream) == (8192, 4 * 2048, 2048)


def test_layer_placement_follows_llama_cpp():
    assert place_layers(8, None, [1, 1]) == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert place_layers(8, 4, [1, 1]) == [None] * 5 + [0, 0, 1, 1]
    assert place_layers(8, 0, [1, 1]) == [None] * 9
    assert place_layers(8, None, [1, 3]) == [0, 0, 0, 1, 1, 1, 1, 1, 1]
    assert place_layers(8, None, []) == [None] * 9


def test_rows_split_weights_and_kv_by_layer():
    shape = qwen2_7b()
    devices = [("NPU 0", 0, 64 * 1024 * MiB), ("NPU 1", 1, 64 * 1024 * MiB)]
    host, d0, d1 = estimate(shape, Settings(n_ctx=4096, n_seq=1), devices)
    assert d0.layers == tuple(range(15)) and d1.layers == tuple(range(15, 28))
    assert d1.weights == 13 * nbytes((3584, 3584), T.Q8_0) + nbytes((3584, 152064), T.Q8_0)  # + output head
    assert host.weights == nbytes((3584, 152064), T.Q8_0)   # the input embedding stays on the CPU
    assert d0.kv == 15 * 4096 * 2048 and d1.kv == 13 * 4096 * 2048
    assert d0.compute == d1.compute > host.compute


def spec_of(yaml_text):
    return load_source(yaml_text, offline=True).config.models[0]


def test_server_defaults_fill_the_settings():
    shape = qwen2_7b()
    s = settings_for(spec_of("model: /m.gguf\n"), shape)
    assert (s.n_ctx, s.n_seq, s.unified, s.n_ubatch, s.flash_attn) == (32768, 4, True, 512, True)
    s = settings_for(spec_of("model: /m.gguf\nn_parallel: 2\nn_ctx: 8192\nflash_attn: 'off'\n"), shape)
    assert (s.n_ctx, s.n_seq, s.unified, s.flash_attn) == (8192, 2, False, False)
    s = settings_for(spec_of("model: /m.gguf\nengine: {kind: llama-cpp-python}\n"), shape)
    assert (s.n_ctx, s.n_seq, s.flash_attn) == (2048, 1, False)


def test_ep_tp_splits_experts_across_ranks():
    spec = spec_of("model: /m.gguf\ndevices: {backend: cann, ids: [0, 1, 2, 3]}\n"
                   "parallel: {mode: ep_tp, ranks: 4, tp_size: 4, ep_size: 4}\nn_ctx: 4096\nengine: {flavor: ascend-fork}\n")
    shape = deepseek2()
    plan = plan_memory(spec, shape, [(0, 1, 2, 3)], lambda i: 65536)
    ranks = plan.rows[1:]
    assert [r.device_id for r in ranks] == [0, 1, 2, 3]
    experts = sum(shape.layer_experts)
    dense = sum(shape.layer_bytes) - experts + shape.output_bytes
    assert ranks[0].weights == dense // 4 + experts // 4
    assert ranks[0].kv == 4096 * 31_104   # the MLA latent is not split across heads


def test_fixes_are_each_enough_alone():
    shape = qwen2_7b()   # 0.9 GiB of weights on the device + 1.75 GiB of KV at 32k: over 2500 MiB
    spec = spec_of("model: /m.gguf\ndevices: {backend: cuda, ids: [0]}\nn_ctx: 32768\nn_parallel: 1\n")
    groups = engine_groups(spec, DeviceSet("cuda", (0, 1), (2500, 2500)))
    plan = plan_memory(spec, shape, groups, lambda i: 2500)
    assert [r.name for r in plan.over()] == ["GPU 0 (CUDA0)"]
    found = fixes(spec, shape, groups, lambda i: 2500, spare_ids=(0, 1))
    assert any(f.startswith("n_ctx: ") for f in found)
    assert any(f.startswith("cache_type_k: q8_0") for f in found)
    assert any("devices.ids: [0, 1]" in f for f in found)
    n_ctx = int(next(f for f in found if f.startswith("n_ctx: ")).split()[1])
    from dataclasses import replace
    fitted = replace(spec, params=replace(spec.params, n_ctx=n_ctx))
    assert not plan_memory(fitted, shape, groups, lambda i: 2500).over()
    too_big = replace(spec, params=replace(spec.params, n_ctx=n_ctx + 256))
    assert plan_memory(too_big, shape, groups, lambda i: 2500).over()


def test_nothing_to_fix_when_it_fits():
    spec = spec_of("model: /m.gguf\ndevices: {backend: cuda, ids: [0]}\nn_ctx: 4096\n")
    assert fixes(spec, qwen2_7b(), [(0,)], lambda i: 80 * 1024) == []


@pytest.mark.parametrize("text, mib", [("64g", 65536), ("32GiB", 32768), ("65536m", 65536), ("1.5t", 1572864)])
def test_sizes(text, mib):
    from launcher.units import size_mib
    assert size_mib(text) == mib
