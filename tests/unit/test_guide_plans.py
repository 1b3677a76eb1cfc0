"""Tier 1: configs written as the Ascend guide writes them (its keys only: no devices, parallel or engine
section) planned on the simulated Ascend host (stand-in npu-smi replaying eight 910B3 NPUs of 64 GB), with
ASCEND_RT_VISIBLE_DEVICES exported as the guide does. Golden plans; the backend and layout come from the
machine, and the plan's first lines say so."""
import itertools
import os
from pathlib import Path

import pytest

from launcher.devices import lookup
from launcher.errors import ConfigError
from launcher.plan import make_plan
from launcher.plan.render import to_shell
from launcher.validate import load_source
from tests.fakes.ascend_host import AscendHost
from tests.unit.test_plan_golden import BINARIES, HOST, check

GUIDE = Path(__file__).resolve().parents[1] / "guide_configs"
EIGHT = "0,1,2,3,4,5,6,7"
CASES = [("guide_none", "0"), ("guide_none", EIGHT), ("guide_layer", "0"), ("guide_layer", EIGHT)]


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    h = AscendHost(tmp_path_factory.mktemp("ascend"))
    h.model("DeepSeek-V2-Chat-Q4_0.gguf")
    h.model("DeepSeek-V2-Lite-Chat-Q8_0.gguf")
    return h


@pytest.fixture
def on_host(host, monkeypatch):
    """This process on the simulated host: its tools on PATH, no Ascend variables of the developer's own."""
    def enter(visible: str | None):
        for key in [k for k in os.environ if k.startswith(("ASCEND_", "HCCL_"))]:
            monkeypatch.delenv(key)
        monkeypatch.setenv("PATH", host.tools_env()["PATH"])
        if visible is not None:
            monkeypatch.setenv("ASCEND_RT_VISIBLE_DEVICES", visible)
    return enter


def plan_text(host: AscendHost, name: str, extra: str = "") -> str:
    text = (GUIDE / f"{name}.yaml").read_text().replace("/srv/", f"{host.srv}/") + extra
    config = load_source(text, f"/configs/{name}.yaml").config
    plan = make_plan(config, lookup(), BINARIES, itertools.count(30001), HOST)
    return to_shell(plan).replace(str(host.srv), "/srv")


@pytest.mark.parametrize("name,visible", CASES, ids=[f"{n}-{len(v.split(','))}npu" for n, v in CASES])
def test_guide_style_plan_on_the_simulated_host_matches_golden(host, on_host, name, visible):
    on_host(visible)
    text = plan_text(host, name)
    assert text.splitlines()[1] == "# backend: cann (npu-smi lists 8 NPU(s))"
    check(f"{name}.visible{len(visible.split(','))}", text)


def test_layer_split_spans_every_exported_npu_in_proportion_to_their_memory(host, on_host):
    on_host(EIGHT)
    line = next(ln for ln in plan_text(host, "guide_layer").splitlines() if ln.startswith("env "))
    assert line.startswith(f"env ASCEND_RT_VISIBLE_DEVICES={EIGHT} /opt/llama/bin/llama-server ")
    assert "--split-mode layer" in line and "--tensor-split " + ",".join(["65536"] * 8) in line


def test_main_gpu_counts_within_the_exported_npus(host, on_host):
    on_host("4,5,6,7")
    text = plan_text(host, "guide_none", "main_gpu: 2\n")
    line = next(ln for ln in text.splitlines() if ln.startswith("env "))
    assert line.startswith("env ASCEND_RT_VISIBLE_DEVICES=6 ") and "--main-gpu 0" in line
    assert "main_gpu 2 of [4, 5, 6, 7]" in text


def test_without_an_exported_variable_every_npu_npu_smi_lists_is_visible(host, on_host):
    on_host(None)
    text = plan_text(host, "guide_layer")
    assert f"env ASCEND_RT_VISIBLE_DEVICES={EIGHT} " in text


def test_devices_ids_contradicting_the_exported_variable_is_an_error_naming_both(host, on_host):
    on_host("0,1")
    text = (GUIDE / "guide_none.yaml").read_text().replace("/srv/", f"{host.srv}/")
    with pytest.raises(ConfigError) as err:
        load_source(text + "devices: {ids: [4]}\n", "/configs/x.yaml")
    message = str(err.value)
    assert "devices.ids [4]" in message and "ASCEND_RT_VISIBLE_DEVICES=0,1" in message


def test_a_config_that_names_cpu_on_an_ascend_host_is_obeyed_with_a_warning(host, on_host):
    on_host(None)
    text = (GUIDE / "guide_none.yaml").read_text().replace("/srv/", f"{host.srv}/") + "devices: {backend: cpu}\n"
    result = load_source(text, "/configs/x.yaml")
    assert result.config.models[0].devices.backend == "cpu"
    (warning,) = [w for w in result.warnings if "runs the model on the CPU" in w.message]
    assert "npu-smi lists 8 NPU(s)" in warning.message


def test_main_gpu_beyond_the_visible_npus_is_an_error(host, on_host):
    on_host("0,1")
    with pytest.raises(ConfigError) as err:
        plan_text(host, "guide_none", "main_gpu: 2\n")
    assert "main_gpu 2 counts within the NPUs ASCEND_RT_VISIBLE_DEVICES=0,1" in str(err.value)
