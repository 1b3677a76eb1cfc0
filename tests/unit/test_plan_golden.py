"""Tier 1: `launch plan` output for every shipped config is exactly the golden file.

Regenerate after an intended change with: UPDATE_GOLDEN=1 pytest tests/unit/test_plan_golden.py
"""
import itertools
import json
import os
from pathlib import Path

import pytest

from launcher.devices import parse_assumed
from launcher.plan import Binaries, Host, make_plan
from launcher.plan.render import to_shell
from launcher.validate import load_config

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
BINARIES = Binaries((("llama-server", "/opt/llama/bin/llama-server"), ("ggml-rpc-server", "/opt/llama/bin/ggml-rpc-server"),
                     ("llama-mpi-server", "/opt/llama-ascend/bin/llama-mpi-server")),
                    mpirun="/opt/venv/bin/mpirun", python="/opt/venv/bin/python")
# Everything the planner reads from outside is an argument: no environment patching here.
HOST = Host(cpu_count=2, is_root=True, run_dir="/run/launcher", models_dir="/cache/launcher/models",
            device_ips=tuple((i, f"192.168.100.{101 + i}") for i in range(8)))  # what hccn_tool answers
CASES = {
    "config_gemma3_270m_cpu": "cpu",
    "config_deepseek_v2_lite": "cann:8",
    "config_deepseek_v2": "cann:8",
    "config_deepseek_v2_lite_ep": "cann:8",
    "config_rpc_2ranks": "cpu",
}
PLAN_CONFIGS = sorted((ROOT / "tests" / "plan_configs").glob("*.yaml"))


def plan_of(path: Path, assume: str | None):
    """(config, plan) as `launch plan --offline [--assume-devices ASSUME]` makes them, with fixed binaries,
    ports and host."""
    env = {"MODEL_DIR": "/data/models", "ASCEND_LLAMA_BIN": "/opt/llama-ascend/bin"}
    devices = parse_assumed(assume) if assume else None
    cfg = load_config(path, offline=True, assume=devices, env=env).config
    return cfg, make_plan(cfg, devices, BINARIES, itertools.count(30001), HOST)


def assumed(path: Path) -> str:
    """A plan config's devices, from its first line (`# assume-devices: cann:8`)."""
    return path.read_text().splitlines()[0].removeprefix("# assume-devices: ").strip()


def render(path: Path, assume: str | None) -> str:
    return to_shell(plan_of(path, assume)[1]).replace(str(ROOT), "<repo>")


def check(name: str, text: str) -> None:
    golden = GOLDEN / f"{name}.sh"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden}; run with UPDATE_GOLDEN=1"
    assert text == golden.read_text()


@pytest.mark.parametrize("name", sorted(CASES))
def test_shipped_config_plan_matches_golden(name):
    check(name, render(ROOT / "configs" / f"{name}.yaml", CASES[name]))


# Guide-style configs name no devices: their NPUs are the target machine's, which --offline does not know.
GUIDE_STYLE = {"config_deepseek_v2_lite", "config_deepseek_v2"}


@pytest.mark.parametrize("name", sorted(set(CASES) - GUIDE_STYLE))
def test_shipped_config_offline_plan_matches_golden(name):
    """--offline without --assume-devices: the config's device ids as written, equal shares, a note."""
    check(f"{name}.offline", render(ROOT / "configs" / f"{name}.yaml", None))


@pytest.mark.parametrize("name", sorted(GUIDE_STYLE))
def test_guide_style_config_offline_asks_for_the_target_machines_devices(name):
    from launcher.errors import PlanError
    with pytest.raises(PlanError) as err:
        render(ROOT / "configs" / f"{name}.yaml", None)
    assert "no cann devices to plan for" in str(err.value) and "--assume-devices cann:N" in str(err.value)


def test_every_shipped_config_has_golden_plans():
    assert {p.stem for p in (ROOT / "configs").glob("*.yaml")} == set(CASES)


def test_single_mode_without_ids_takes_one_card_of_eight():
    from launcher.validate import load_source
    text = "model: m.gguf\ndevices: {backend: cann}\nparallel: {mode: single}\nmain_gpu: 0\n"
    cfg = load_source(text, "x.yaml", offline=True, assume=parse_assumed("cann:8")).config
    [proc] = make_plan(cfg, parse_assumed("cann:8"), BINARIES, itertools.count(1), HOST).models[0].processes
    assert proc.env == (("ASCEND_RT_VISIBLE_DEVICES", "0"),) and proc.devices == (0,)
    assert "--split-mode" not in proc.argv and "--tensor-split" not in proc.argv
    layer = load_source(text.replace("single", "layer"), "x.yaml", offline=True, assume=parse_assumed("cann:8")).config
    [proc] = make_plan(layer, parse_assumed("cann:8"), BINARIES, itertools.count(1), HOST).models[0].processes
    assert proc.devices == tuple(range(8)) and "--tensor-split 1,1,1,1,1,1,1,1" in " ".join(proc.argv)


def test_offline_plan_of_npu_config_without_ids_says_what_to_give(run_launch, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: m.gguf\ndevices: {backend: cann}\nparallel: {mode: layer}\n")
    res = run_launch("plan", "--offline", "--config", str(cfg))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "list them in devices.ids, or use --assume-devices cann:N" in res.stderr

@pytest.mark.parametrize("path", PLAN_CONFIGS, ids=lambda p: p.stem)
def test_parallel_layout_plan_matches_golden(path):
    check(path.stem, render(path, assumed(path)))


def test_the_guides_layer_split_runs_the_forks_server_on_every_npu_with_its_yaml():
    text = render(ROOT / "configs" / "config_deepseek_v2.yaml", "cann:8")
    line = [ln for ln in text.splitlines() if "llama-server" in ln and not ln.startswith("#")][0]
    assert line == ("env ASCEND_RT_VISIBLE_DEVICES=0,1,2,3,4,5,6,7 /opt/llama-ascend/bin/llama-server "
                    "--config /run/launcher/deepseek-v2-0.fork.yaml &")
    assert "split_mode: layer" in text and "port: 30001" in text


def test_ep_tp_is_one_mpirun_line_with_fork_config():
    text = render(ROOT / "configs" / "config_deepseek_v2_lite_ep.yaml", "cann:8")
    line = [ln for ln in text.splitlines() if "/opt/venv/bin/mpirun" in ln and not ln.startswith("#")][0]
    assert line.startswith("env LAUNCHER_JOB=deepseek-v2-lite@30001 /opt/venv/bin/mpirun -np 2 "
                           "--allow-run-as-root --bind-to none -x ASCEND_RT_VISIBLE_DEVICES=0,1 "
                           "-x RANK_TABLE_FILE=/run/launcher/deepseek-v2-lite.hccl.json -x HCCL_CONNECT_TIMEOUT=600 "
                           "-x LAUNCHER_JOB ")
    assert '"device_ip": "192.168.100.102"' in text  # NPU 1's address, as hccn_tool gives it
    assert line.endswith("/opt/llama-ascend/bin/llama-mpi-server --config /run/launcher/deepseek-v2-lite.fork.yaml &")
    assert "tp_size: 2" in text and "ep_size: 2" in text and "enable_mla: true" in text


def test_plan_json_lists_every_process(run_launch):
    res = run_launch("plan", "--config", "configs/config_deepseek_v2.yaml", "--offline",
                     "--assume-devices", "cann:8", "--json")
    assert res.returncode == 0, res.stderr
    plan = json.loads(res.stdout)
    proc = plan["models"][0]["processes"][0]
    assert proc["argv"][0].endswith("llama-server") and ["ASCEND_RT_VISIBLE_DEVICES", "0,1,2,3,4,5,6,7"] in proc["env"]


def test_flags_the_binary_lacks_are_reported_not_dropped_silently():
    from launcher.validate import load_source
    cfg = load_source("model: m.gguf\nuse_mlock: true\nn_ctx: 64\n", "x.yaml", offline=True).config
    old_help = "  -c, --ctx-size N   size\n  --mlock   lock\n  --no-mmap  no\n"
    b = Binaries((("llama-server", "/old/llama-server"),), help_texts=(("/old/llama-server", old_help),))
    plan = make_plan(cfg, parse_assumed("cpu"), b, itertools.count(1000), HOST)
    model = plan.models[0]
    assert [(i.key, i.flag) for i in model.flag_issues] == [("use_mlock", "--load-mode")]
    assert "# note: use_mlock: /old/llama-server does not support --load-mode" in to_shell(plan)
    assert "--ctx-size" in model.processes[0].argv and "--load-mode" not in model.processes[0].argv


def test_layer_split_is_proportional_to_device_memory_when_known():
    from launcher.devices import DeviceSet
    from launcher.validate import load_source
    cfg = load_source("model: m.gguf\ndevices: {backend: cann, ids: [0, 1]}\nparallel: {mode: layer}\n", "x.yaml",
                      offline=True).config
    devices = DeviceSet("cann", (0, 1), (65536, 32768))
    argv = make_plan(cfg, devices, BINARIES, itertools.count(1), HOST).models[0].processes[0].argv
    assert " --tensor-split 65536,32768" in " ".join(argv)
