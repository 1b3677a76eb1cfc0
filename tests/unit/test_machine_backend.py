"""Tier 1: which backend a config that names none gets, and why; the doctor's version rules."""
import pytest

from launcher import devices
from launcher.devices import machine_backend, parse_assumed
from launcher.doctor.ascend import needed_driver, version_key
from tests.fakes.ascend_host import AscendHost


@pytest.fixture
def bare(tmp_path, monkeypatch):
    """A machine with no vendor tools, no device nodes and no Ascend variables."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(devices, "DAVINCI", str(tmp_path / "dev" / "davinci[0-9]*"))
    return tmp_path


def test_nothing_ascend_or_nvidia_means_cpu_and_says_why(bare):
    choice = machine_backend(env={})
    assert choice.backend == "cpu" and "no Ascend NPU" in choice.reason


def test_npu_smi_listing_npus_means_cann(bare, tmp_path, monkeypatch):
    host = AscendHost(tmp_path / "host")
    monkeypatch.setenv("PATH", str(host.tools))
    assert machine_backend(env={}) == devices.BackendChoice("cann", "npu-smi lists 8 NPU(s)")


def test_davinci_nodes_mean_cann(bare):
    (bare / "dev").mkdir()
    (bare / "dev" / "davinci0").write_text("")
    choice = machine_backend(env={})
    assert choice.backend == "cann" and choice.reason.endswith("davinci0 exists (the Ascend driver)")


@pytest.mark.parametrize("name", ["ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH", "ASCEND_RT_VISIBLE_DEVICES"])
def test_the_toolkits_environment_or_an_exported_device_list_means_cann(bare, name):
    assert machine_backend(env={name: "0"}) == devices.BackendChoice("cann", f"{name}=0 is exported")


def test_nvidia_smi_listing_gpus_means_cuda(bare):
    tools = bare / "empty"
    tools.mkdir()
    (tools / "nvidia-smi").write_text("#!/bin/sh\necho '0, 81559'\necho '1, 81559'\n")
    (tools / "nvidia-smi").chmod(0o755)
    assert machine_backend(env={}) == devices.BackendChoice("cuda", "nvidia-smi lists 2 GPU(s)")


def test_assumed_devices_decide_and_offline_without_them_is_cpu(bare):
    assert machine_backend(parse_assumed("cann:8")).reason == "--assume-devices cann:8"
    assert machine_backend(offline=True).backend == "cpu"


def test_an_exported_device_list_narrows_assumed_devices(bare, monkeypatch):
    monkeypatch.setenv("ASCEND_RT_VISIBLE_DEVICES", "2,3")
    assert devices.lookup(parse_assumed("cann:8x64g"))("cann").ids == (2, 3)


def test_versions_order_rcs_before_their_release():
    assert version_key("24.1.rc2") < version_key("24.1.0") < version_key("25.2.0")
    assert version_key("8.0.RC2") < version_key("8.0.0") < version_key("8.2.RC1.alpha001") == version_key("8.2.RC1")
    assert needed_driver("8.2.RC1") == "25.2.0" and needed_driver("7.0.1") == "23.0.0" and needed_driver("9.9") is None


def test_a_switched_model_inherits_the_machines_backend_as_a_plain_section(bare):
    """What /api/v1/model/switch writes for the new model reads as if the user had written it."""
    from launcher.config.convert import inherited_sections
    from launcher.validate import load_source
    spec = load_source("model: /m.gguf\n", offline=True, assume=parse_assumed("cann:2")).config.models[0]
    assert spec.devices.chosen_by == "--assume-devices cann:2"
    assert inherited_sections(spec)["devices"] == {"backend": "cann", "ids": [0]}  # the guide's one card
    again = load_source("model: /m.gguf\n" + "devices: {backend: cann}\n", offline=True,
                        assume=parse_assumed("cann:2")).config.models[0]
    assert again.devices.backend == "cann" and again.devices.chosen_by == ""
