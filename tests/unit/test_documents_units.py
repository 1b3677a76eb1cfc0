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


def multi_model_yaml() -> str:
    """The llama.cpp document's Phase-3 `multi-model.yaml`, as it is written."""
    text = (Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "000_af5a0d70aa97a134.txt")
    if not text.exists():
        pytest.skip("the reference documents are not beside this checkout")
    return text.read_text(encoding="utf-8").split("```yaml\n# multi-model.yaml", 1)[1].split("```", 1)[0]


def test_the_phase_3_multi_model_yaml_is_a_config(tmp_path):
    from launcher.validate import load_config
    from tests.unit.gguf_fixture import write_tiny_gguf
    path = tmp_path / "multi-model.yaml"
    path.write_text("# multi-model.yaml" + multi_model_yaml())
    with pytest.raises(ConfigError) as err:   # as written: only its files are missing here, named its way
        load_config(path)
    assert {(p.dotted, p.line) for p in err.value.problems} == {("models[0].path", 3), ("models[1].path", 6)}
    for name in ("llama-7b.gguf", "codellama-13b.gguf"):
        write_tiny_gguf(tmp_path / name)
    path.write_text(path.read_text().replace("/models/", f"{tmp_path}/"))
    cfg = load_config(path).config
    assert [(m.name, m.model, m.params.n_gpu_layers, m.params.n_ctx) for m in cfg.models] == [
        ("llama-7b", str(tmp_path / "llama-7b.gguf"), 35, 2048), ("codellama", str(tmp_path / "codellama-13b.gguf"), 40, 2048)]
    assert cfg.gateway.port == 8000   # the document's default port


def test_the_multi_model_yaml_problems_name_the_documents_keys(tmp_path):
    from launcher.validate import load_config
    path = tmp_path / "multi-model.yaml"
    path.write_text("models:\n  - path: a.gguf\n    n_gpu_layer: 35\n  - path: b.gguf\n    name: b\n    n_ctx: 0\n"
                    "    port: 9000\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, offline=True)
    found = {(p.dotted, p.line) for p in err.value.problems}
    assert found == {("models[0].n_gpu_layer", 3), ("models[1].n_ctx", 6), ("models[1].port", 7)}, found
    assert "did you mean 'n_gpu_layers'" in str(err.value)


SWITCH_ENV = """# 必需配置
# llama.cpp 二进制文件路径
LLAMA_SERVER_PATH={server}
LLAMA_BENCH_PATH={bench}

MODELS_DIR={models}

# 可选配置
SERVER_PORT=8080
GPU_LAYERS=20  # GPU加速层数
"""


def test_the_switch_documents_env_file_is_read_from_config_path_then_dot_env(tmp_path, monkeypatch):
    """The Llama Switch document's `.env` example: CONFIG_PATH names it, else ./.env; a comment after a value
    is not part of it; the environment wins over the file; `launch plan` says where each value came from."""
    from launcher.binaries import resolve_binaries
    env_file = tmp_path / "switch.env"
    env_file.write_text(SWITCH_ENV.format(server="/opt/llama/llama-server", bench="/opt/llama/llama-bench",
                                          models="/srv/models"))
    cfg = load_source("model: m.gguf\n", "x.yaml", offline=True, env={"CONFIG_PATH": str(env_file)}).config
    assert (cfg.models_dir, cfg.gateway.port, cfg.models[0].params.n_gpu_layers) == ("/srv/models", 8080, 20)
    binaries = resolve_binaries(cfg, with_help=False, env={"CONFIG_PATH": str(env_file)})
    assert binaries.llama_server == "/opt/llama/llama-server" and binaries.llama_bench == "/opt/llama/llama-bench"
    text = to_shell(make_plan(cfg, parse_assumed("cpu"), binaries, itertools.count(1), Host()))
    assert f"#   GPU_LAYERS         n_gpu_layers  20  <- the .env file {env_file}:10" in text
    assert f"#   LLAMA_SERVER_PATH  llama-server  /opt/llama/llama-server  <- the .env file {env_file}:3" in text
    # the environment wins over the file
    cfg = load_source("model: m.gguf\n", "x.yaml", offline=True,
                      env={"CONFIG_PATH": str(env_file), "GPU_LAYERS": "7"}).config
    assert cfg.models[0].params.n_gpu_layers == 7
    # without CONFIG_PATH: ./.env
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("GPU_LAYERS=12 # a comment\nUNRELATED=1\n")
    assert load_source("model: m.gguf\n", "x.yaml", offline=True, env={}).config.models[0].params.n_gpu_layers == 12
    # a CONFIG_PATH that names nothing is an error that says so
    with pytest.raises(ConfigError, match="CONFIG_PATH names .*absent.env, which is not a file"):
        load_source("model: m.gguf\n", "x.yaml", offline=True, env={"CONFIG_PATH": str(tmp_path / "absent.env")})
