"""Tier 1: the pure parts behind the reference documents' examples: the Llama Switch `config` names,
its `.env` names, device memory from npu-smi / nvidia-smi, and the llama-cpp-python flag fixes."""
import itertools
from pathlib import Path

import pytest

from launcher.binaries import Binaries
from launcher.config.switch_names import UnknownSetting, to_settings
from launcher.devices import parse_assumed
from launcher.engines.flags import python_server_flags
from launcher.errors import ConfigError
from launcher.plan import Host, make_plan
from launcher.plan.render import to_shell
from launcher.telemetry import parse_npu_smi_processes, parse_nvidia_smi_apps
from launcher.validate import load_source

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_switch_config_names_become_config_keys():
    settings, gateway_only = to_settings({"host": "127.0.0.1", "port": 8080, "threads": 32, "threads_batch": 32,
                                          "n_gpu_layers": 99, "flash_attn": True, "batch_size": 2048,
                                          "ubatch_size": 512, "ctx_size": 4096, "mlock": True,
                                          "cache_type_k": "f16", "cache_type_v": "f16"})
    assert gateway_only == {"host": "127.0.0.1", "port": 8080}
    assert settings == {"n_threads": 32, "n_threads_batch": 32, "n_gpu_layers": 99, "flash_attn": "on",
                        "n_batch": 2048, "n_ubatch": 512, "n_ctx": 4096, "use_mlock": True, "cache_type_k": "f16",
                        "cache_type_v": "f16"}
    split, _ = to_settings({"split_mode": "layer", "tensor_split": "0.5,0.5", "main_gpu": 0, "flash_attn": 0})
    assert split == {"split_mode": "layer", "tensor_split": [0.5, 0.5], "main_gpu": 0, "flash_attn": "off"}
    assert to_settings({"n_ctx": 512, "model_alias": "x"})[0] == {"n_ctx": 512, "model_alias": "x"}  # our names too


def test_unknown_switch_name_says_the_nearest():
    with pytest.raises(UnknownSetting, match="'thread'.*did you mean 'threads'"):
        to_settings({"thread": 4})


def test_env_names_are_defaults_the_config_overrides():
    env = {"MODELS_DIR": "/srv/models", "SERVER_PORT": "9090", "GPU_LAYERS": "20"}
    cfg = load_source("model: m.gguf\n", "x.yaml", offline=True, env=env).config
    assert (cfg.models_dir, cfg.gateway.port, cfg.models[0].params.n_gpu_layers) == ("/srv/models", 9090, 20)
    cfg = load_source("model: m.gguf\nport: 8000\nn_gpu_layers: 0\n", "x.yaml", offline=True, env=env).config
    assert (cfg.gateway.port, cfg.models[0].params.n_gpu_layers) == (8000, 0)
    with pytest.raises(ConfigError, match="from the environment variable SERVER_PORT"):
        load_source("model: m.gguf\n", "x.yaml", offline=True, env={"SERVER_PORT": "eighty"})


def test_plan_says_where_each_env_name_setting_came_from():
    cfg = load_source("model: m.gguf\nport: 8000\n", "x.yaml", offline=True, env={"GPU_LAYERS": "20"}).config
    text = to_shell(make_plan(cfg, parse_assumed("cpu"), Binaries(), itertools.count(1), Host()))
    assert "#   GPU_LAYERS         n_gpu_layers  20  <- the environment" in text
    assert "#   SERVER_PORT        port          8000  <- x.yaml:2" in text
    quiet = load_source("model: m.gguf\n", "x.yaml", offline=True, env={}).config
    assert "Llama Switch" not in to_shell(make_plan(quiet, parse_assumed("cpu"), Binaries(), itertools.count(1),
                                                    Host()))


def test_llama_cpp_python_gets_numbers_it_accepts():
    cfg = load_source("model: m.gguf\nn_gpu_layers: auto\nflash_attn: auto\nengine: {kind: llama-cpp-python}\n",
                      "x.yaml", offline=True).config
    argv, notes = python_server_flags(cfg.models[0].params, threads=None)
    assert argv == ["--n_gpu_layers", "-1"] and "cannot fit layers" in notes[0]


def test_npu_smi_process_table_gives_device_memory_per_pid():
    rows = parse_npu_smi_processes((FIXTURES / "npu_smi_info_910b.txt").read_text())
    assert [(r.device, r.pid, r.name, r.memory_mib) for r in rows] == [(0, 2712581, "llama-server", 4317)]
    in_container = ("| NPU     Chip       | Process id    | Process name| Process memory(MB) |Process id in container|\n"
                    "| 1       0          | 90001         | llama-server| 2048               | 77                    |\n")
    assert [(r.device, r.pid, r.memory_mib) for r in parse_npu_smi_processes(in_container)] == [(1, 77, 2048)]


def test_nvidia_smi_compute_apps_give_device_memory_per_pid():
    rows = parse_nvidia_smi_apps((FIXTURES / "nvidia_smi_compute_apps.csv").read_text())
    assert [(r.pid, r.memory_mib) for r in rows] == [(2712581, 4317), (2712590, 812)]


ANYSERVE_YAML = """# model.yaml
model_path: /models/llama-7b-chat.gguf
name: llama-7b

# 模型加载参数
n_ctx: 4096
n_gpu_layers: 35
n_batch: 512
n_threads: 8

# 生成参数默认值
max_tokens: 256
temperature: 0.7
top_p: 0.95
top_k: 40
repeat_penalty: 1.1

# 服务参数
port: 8000
"""


def test_the_anyserve_documents_yaml_is_a_config(tmp_path):
    from launcher.validate import load_config
    path = tmp_path / "model.yaml"
    path.write_text(ANYSERVE_YAML)
    cfg = load_config(path, offline=True).config
    [m] = cfg.models
    assert (m.model, m.name, m.params.n_ctx, m.params.n_gpu_layers, m.params.n_batch, m.params.n_threads) == \
        ("/models/llama-7b-chat.gguf", "llama-7b", 4096, 35, 512, 8)
    assert m.defaults.as_request_fields() == {"temperature": 0.7, "top_p": 0.95, "top_k": 40, "repeat_penalty": 1.1,
                                              "max_tokens": 256}
    assert cfg.gateway.port == 8000


def test_anyserve_yaml_problems_name_the_documents_keys(tmp_path):
    from launcher.validate import load_config
    path = tmp_path / "model.yaml"
    path.write_text("model_path: m.gguf\nname: ''\nn_ctx: -5\ntemprature: 2\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, offline=True)
    found = {(p.dotted, p.line) for p in err.value.problems}
    assert found == {("name", 2), ("n_ctx", 3), ("temprature", 4)}
    assert "did you mean 'temperature'" in str(err.value)


def test_anyserve_yaml_takes_the_documents_defaults(tmp_path):
    from launcher.validate import load_config
    path = tmp_path / "model.yaml"
    path.write_text("model_path: m.gguf\n")
    m = load_config(path, offline=True).config.models[0]
    assert (m.params.n_ctx, m.params.n_batch, m.params.n_gpu_layers, m.defaults.max_tokens) == (2048, 512, "all", 256)
