"""Tier 1: the Llama Switch benchmark parameters map onto the pinned llama-bench's flags exactly."""
import pytest

from launcher.engines.llama_bench import (
    PARAMS,
    BenchParams,
    bench_command,
    parse_rows,
    summarize,
)
from launcher.errors import LauncherError

# The document's full benchmark body (004, "启动基准测试"), every one of its 27 parameters.
DOCUMENT_CONFIG = {
    "n_prompt": 512, "n_gen": 128, "n_depth": 0, "batch_size": 2048, "ubatch_size": 512, "cache_type_k": "f16",
    "cache_type_v": "f16", "threads": 32, "cpu_mask": "", "cpu_strict": 0, "poll": 50, "n_gpu_layers": 99,
    "split_mode": "layer", "main_gpu": 0, "no_kv_offload": 0, "flash_attn": 0, "mmap": 1, "numa": "",
    "embeddings": 0, "tensor_split": "0", "repetitions": 5, "priority": 0, "delay": 0, "output": "md",
    "output_err": "none", "verbose": 0, "progress": 0,
}


def argv(config: dict) -> list[str]:
    return list(bench_command("/b/llama-bench", "/m.gguf", BenchParams.from_dict(config)).argv)


def test_the_table_holds_the_documents_27_parameters():
    assert [p.name for p in PARAMS] == list(DOCUMENT_CONFIG) and len(PARAMS) == 27


def test_the_documents_body_becomes_the_pinned_binarys_flags():
    cmd = bench_command("/b/llama-bench", "/m.gguf", BenchParams.from_dict(DOCUMENT_CONFIG))
    assert list(cmd.argv) == [
        "/b/llama-bench", "-m", "/m.gguf", "-p", "512", "-n", "128", "-d", "0", "-b", "2048", "-ub", "512",
        "-ctk", "f16", "-ctv", "f16", "-t", "32", "--cpu-strict", "0", "--poll", "50", "-ngl", "99", "-sm", "layer",
        "-mg", "0", "-nkvo", "0", "-fa", "off", "--load-mode", "mmap", "-embd", "0", "-r", "5", "--prio", "0",
        "--delay", "0", "-o", "md", "-oe", "json"]
    assert (cmd.output, cmd.parse_stream, cmd.parse_format) == ("md", "stderr", "json")


@pytest.mark.parametrize("given,flags", [
    ({"flash_attn": 1}, ["-fa", "on"]), ({"flash_attn": True}, ["-fa", "on"]), ({"flash_attn": "auto"}, ["-fa", "auto"]),
    ({"mmap": 0}, ["--load-mode", "none"]), ({"tensor_split": "0.5,0.5"}, ["-ts", "0.5/0.5"]),
    ({"tensor_split": [3, 1]}, ["-ts", "3/1"]), ({"cpu_mask": "0xff"}, ["-C", "0xff"]),
    ({"numa": "distribute"}, ["--numa", "distribute"]), ({"verbose": 1, "progress": True}, ["-v", "--progress"]),
    ({"no_kv_offload": True, "embeddings": 1}, ["-nkvo", "1", "-embd", "1"]),
])
def test_document_and_launcher_spellings_map_to_one_flag(given, flags):
    assert f" {' '.join(flags)} " in f" {' '.join(argv(given))} "


def test_defaults_and_where_results_are_read():
    assert argv({}) == ["/b/llama-bench", "-m", "/m.gguf", "-p", "128", "-n", "32", "-r", "3", "-o", "json"]
    csv_cmd = bench_command("b", "m", BenchParams.from_dict({"output": "csv"}))
    assert (csv_cmd.parse_stream, csv_cmd.parse_format) == ("stdout", "csv") and "-oe" not in csv_cmd.argv
    own_err = bench_command("b", "m", BenchParams.from_dict({"output": "md", "output_err": "jsonl"}))
    assert (own_err.parse_stream, own_err.parse_format) == ("stderr", "jsonl")


@pytest.mark.parametrize("bad", [{"n_prompt": -1}, {"flash_attn": "yes"}, {"unknown": 1}, {"repetitions": 0},
                                 {"cpu_strict": 2}, {"output": "xml"}, {"tensor_split": "half"}, {"priority": 4}])
def test_bad_parameters_are_refused(bad):
    with pytest.raises(LauncherError):
        BenchParams.from_dict(bad)


def test_results_parse_from_every_format_llama_bench_prints():
    # as llama-bench prints it with -v and progress: 1 (progress glued to the end of a JSON line)
    json_text = ('load_tensors: a log line\n[\nllama-bench: benchmark 1/2: starting\n  {"n_prompt": 8, "n_gen": 0,\n'
                 '  "avg_ts": 367.4, "stddev_ts": 0.1}llama-bench: benchmark 2/2: starting\nprint_info: a log {line}\n,\n'
                 '  {"n_prompt": 0, "n_gen": 4, "avg_ts": 70.0, "stddev_ts": 0.2}\n]\n')
    assert [r["avg_ts"] for r in parse_rows("json", json_text)] == [367.4, 70.0]
    assert parse_rows("csv", "n_prompt,n_gen,avg_ts\n8,0,367.4\n")[0] == {"n_prompt": 8, "n_gen": 0, "avg_ts": 367.4}
    md = ("| model | size | params | backend | threads | test | t/s |\n| --- | ---: | ---: | --- | ---: | ---: | ---: |\n"
          "| gemma3 270M Q4_K - Medium | 235.16 MiB | 268.10 M | CPU | 2 | pp8 | 367.45 ± 0.00 |\n")
    assert summarize(parse_rows("md", md))[0] | {} == {
        "test": "pp8", "tokens_per_s": 367.45, "stddev": 0.0, "model_type": "gemma3 270M Q4_K - Medium",
        "backend": "CPU", "threads": 2, "n_gpu_layers": None, "repetitions": None}


def test_summary_names_prompt_and_generation_tests():
    rows = summarize([{"n_prompt": 512, "n_gen": 0, "avg_ts": 812.345, "stddev_ts": 3.2, "samples_ts": [1, 2]},
                      {"n_prompt": 0, "n_gen": 128, "n_depth": 1024, "avg_ts": 48.1, "stddev_ts": 0.4}])
    assert [(r["test"], r["tokens_per_s"]) for r in rows] == [("pp512", 812.35), ("tg128 @ d1024", 48.1)]
