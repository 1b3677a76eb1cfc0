"""Tier 1: the Llama Switch benchmark parameters map onto llama-bench's flags exactly."""
import pytest

from launcher.bench.llama_bench import BenchParams, bench_argv, summarize
from launcher.errors import LauncherError


def test_every_parameter_becomes_its_flag():
    p = BenchParams.from_dict({"n_prompt": 512, "n_gen": 128, "n_depth": 1024, "batch_size": 2048,
                               "ubatch_size": 512, "cache_type_k": "q8_0", "cache_type_v": "f16", "threads": 8,
                               "n_gpu_layers": 99, "split_mode": "layer", "main_gpu": 1, "flash_attn": "on",
                               "mmap": False, "repetitions": 5, "tensor_split": [3, 1]})
    assert bench_argv("/b/llama-bench", "/m.gguf", p) == [
        "/b/llama-bench", "-m", "/m.gguf", "-o", "json", "-p", "512", "-n", "128", "-d", "1024", "-b", "2048",
        "-ub", "512", "-ctk", "q8_0", "-ctv", "f16", "-t", "8", "-ngl", "99", "-sm", "layer", "-mg", "1",
        "-fa", "on", "-r", "5", "--load-mode", "none", "-ts", "3/1"]


@pytest.mark.parametrize("bad", [{"n_prompt": -1}, {"flash_attn": "yes"}, {"unknown": 1}, {"repetitions": 0}])
def test_bad_parameters_are_refused(bad):
    with pytest.raises(LauncherError):
        BenchParams.from_dict(bad)


def test_summary_names_prompt_and_generation_tests():
    rows = summarize([{"n_prompt": 512, "n_gen": 0, "avg_ts": 812.345, "stddev_ts": 3.2, "samples_ts": [1, 2]},
                      {"n_prompt": 0, "n_gen": 128, "n_depth": 1024, "avg_ts": 48.1, "stddev_ts": 0.4}])
    assert [(r["test"], r["tokens_per_s"]) for r in rows] == [("pp512", 812.35), ("tg128 @ d1024", 48.1)]
