"""Tier 1: device telemetry from recorded `npu-smi info` (910B, 910 with two chips per NPU, 310P) and
`nvidia-smi --query-gpu` outputs, in /metrics under MindCluster's and DCGM's names, absent without a tool;
engine process metrics on every backend."""
import asyncio
import os
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry, generate_latest

from launcher.gateway.console.devices import DeviceCollector, DeviceTelemetry
from launcher.telemetry import device_readings, parse_npu_smi_info, parse_nvidia_smi_gpus
from tests.fakes.harness import gateway

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def readings(name: str):
    return parse_npu_smi_info((FIXTURES / name).read_text())


def test_910b_table_one_chip_per_npu():
    chips = readings("npu_smi_info_910b.txt")
    assert [(c.id, c.model_name, c.healthy, c.utilization, c.temperature, c.power, c.hbm_used, c.hbm_total)
            for c in chips] == [(0, "910B3", True, 12, 41, 96.8, 7478, 65536), (1, "910B3", True, 0, 40, 89.5, 3369, 65536)]
    assert chips[0].memory_used is None  # the 910B's "Memory-Usage 0 / 0" is not its device memory


def test_910_with_two_chips_per_npu_takes_the_phy_id_and_a_missing_power():
    chips = readings("npu_smi_info_910_2chips.txt")
    assert [(c.id, c.power, c.hbm_used) for c in chips] == [(0, 166.1, 3160), (1, None, 2872), (2, 163.0, 3142)]


def test_310p_has_device_memory_and_no_hbm():
    chips = readings("npu_smi_info_310p.txt")
    assert [(c.id, c.model_name, c.memory_used, c.memory_total, c.hbm_used) for c in chips] == [
        (0, "310P3", 1074, 21534, None), (1, "310P3", 1070, 21534, None)]


def test_nvidia_smi_query_gpu_csv():
    gpus = parse_nvidia_smi_gpus((FIXTURES / "nvidia_smi_query_gpu.csv").read_text())
    assert [(g.id, g.model_name, g.hbm_used, g.hbm_total, g.utilization, g.temperature, g.power) for g in gpus] == [
        (0, "NVIDIA A100-SXM4-80GB", 40513, 81920, 87, 61, 312.45), (1, "NVIDIA A100-SXM4-80GB", 4, 81920, 0, 33, None)]


def scrape(read, backends=("cann",)) -> str:
    telemetry = DeviceTelemetry(lambda: backends, 10, read=read)
    asyncio.run(telemetry.refresh())
    registry = CollectorRegistry()
    registry.register(DeviceCollector(telemetry, lambda: []))
    return generate_latest(registry).decode()


def test_npu_metrics_carry_mindcluster_names_and_labels():
    text = scrape(lambda backend: readings("npu_smi_info_910b.txt"))
    assert 'npu_chip_info_hbm_used_memory{id="0",model_name="910B3"} 7478.0' in text
    assert 'npu_chip_info_hbm_total_memory{id="1",model_name="910B3"} 65536.0' in text
    assert 'npu_chip_info_utilization{id="0",model_name="910B3"} 12.0' in text
    assert 'npu_chip_info_temperature{id="1",model_name="910B3"} 40.0' in text
    assert 'npu_chip_info_power{id="0",model_name="910B3"} 96.8' in text
    assert 'npu_chip_info_health_status{id="0",model_name="910B3"} 1.0' in text
    assert "npu_chip_info_used_memory" not in text  # a 910B reports HBM, not the 310P's memory
    p310 = scrape(lambda backend: readings("npu_smi_info_310p.txt"))
    assert 'npu_chip_info_used_memory{id="1",model_name="310P3"} 1070.0' in p310 and "hbm" not in p310
    two = scrape(lambda backend: readings("npu_smi_info_910_2chips.txt"))
    assert 'npu_chip_info_power{id="1"' not in two and 'npu_chip_info_power{id="2",model_name="Ascend910"} 163.0' in two


def test_gpu_metrics_carry_dcgm_names():
    text = scrape(lambda backend: parse_nvidia_smi_gpus((FIXTURES / "nvidia_smi_query_gpu.csv").read_text()),
                  backends=("cuda",))
    assert 'DCGM_FI_DEV_FB_USED{gpu="0",modelName="NVIDIA A100-SXM4-80GB"} 40513.0' in text
    assert 'DCGM_FI_DEV_GPU_UTIL{gpu="0",modelName="NVIDIA A100-SXM4-80GB"} 87.0' in text
    assert 'DCGM_FI_DEV_POWER_USAGE{gpu="1"' not in text


def test_without_a_tool_the_metrics_are_absent_not_zero(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no npu-smi, no nvidia-smi
    assert device_readings("cann") is None and device_readings("cuda") is None
    text = scrape(device_readings, backends=("cann", "cuda", "cpu"))
    assert "npu_chip_info" not in text and "DCGM" not in text
    calls = []
    scrape(lambda backend: calls.append(backend), backends=("cpu",))
    assert calls == []  # a CPU deployment asks no tool


def test_a_tool_on_path_is_run_and_parsed(monkeypatch, tmp_path):
    tool = tmp_path / "npu-smi"
    tool.write_text(f"#!/bin/sh\n[ \"$1\" = info ] && cat {FIXTURES / 'npu_smi_info_310p.txt'}\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert [c.model_name for c in device_readings("cann")] == ["310P3", "310P3"]


def test_engine_processes_report_memory_and_cpu(tmp_path):
    with gateway(tmp_path) as gw:
        text = httpx.get(gw.url + "/metrics").text
        rss = [ln for ln in text.splitlines() if ln.startswith('launcher_process_resident_memory_bytes{model="fake"')]
        assert rss and float(rss[0].split()[-1]) > 1e6, text[-2000:]
        assert 'launcher_process_cpu_seconds_total{model="fake"' in text
        devices = httpx.get(gw.url + "/api/devices").json()
        assert devices["backends"] == [] and devices["devices"] == {}  # a CPU deployment


def test_launch_status_prints_the_device_table(tmp_path, capsys):
    from launcher.cli.run_commands import _print_devices
    from launcher.config.model import Gateway
    with gateway(tmp_path, keys=("k1",)) as gw:
        gw.app.state.telemetry.readings = {"cann": readings("npu_smi_info_910b.txt")}
        _print_devices(Gateway(port=httpx.URL(gw.url).port, api_keys=("k1",)))
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:3] == ["DEVICE", "MODEL", "HEALTH"]
    assert out[2].split() == ["cann:0", "910B3", "OK", "12", "41", "96.8", "7478", "/", "65536"]
