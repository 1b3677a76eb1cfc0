"""Device telemetry and engine process metrics for /metrics (and `GET /api/devices`, `launch status`).

The vendor tool of each accelerator backend in use (`npu-smi info`, `nvidia-smi --query-gpu`) is run every
`gateway.telemetry_interval` seconds in a worker thread, never on the event loop and never per request;
/metrics shows the latest readings. Names follow what operators already graph: MindCluster's NPU exporter
(`npu_chip_info_*`, labels `id`, `model_name`) and NVIDIA's DCGM exporter (`DCGM_FI_DEV_*`, labels `gpu`,
`modelName`). With no tool, or no reading yet, the metrics are absent, not zero.

Engine processes (every backend): resident memory and CPU seconds of each process and its children,
read from /proc when /metrics is scraped.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ...supervise.proctree import alive, cpu_seconds, descendants, rss_mib
from ...telemetry import ChipReading, device_readings

log = logging.getLogger("launcher.gateway")
NPU = {  # metric: (help, reading field)
    "npu_chip_info_hbm_used_memory": ("HBM in use, MB", "hbm_used"),
    "npu_chip_info_hbm_total_memory": ("HBM size, MB", "hbm_total"),
    "npu_chip_info_used_memory": ("Device memory in use, MB (310P)", "memory_used"),
    "npu_chip_info_total_memory": ("Device memory size, MB (310P)", "memory_total"),
    "npu_chip_info_utilization": ("AICore utilization, %", "utilization"),
    "npu_chip_info_temperature": ("Chip temperature, °C", "temperature"),
    "npu_chip_info_power": ("Chip power, W", "power"),
}
GPU = {
    "DCGM_FI_DEV_FB_USED": ("Framebuffer memory in use, MiB", "hbm_used"),
    "DCGM_FI_DEV_FB_TOTAL": ("Framebuffer memory size, MiB", "hbm_total"),
    "DCGM_FI_DEV_GPU_UTIL": ("GPU utilization, %", "utilization"),
    "DCGM_FI_DEV_GPU_TEMP": ("GPU temperature, °C", "temperature"),
    "DCGM_FI_DEV_POWER_USAGE": ("Power draw, W", "power"),
}


class DeviceTelemetry:
    """The latest readings per backend, refreshed by a background task."""

    def __init__(self, backends: Callable[[], Iterable[str]], interval: float,
                 read: Callable[[str], list[ChipReading] | None] = device_readings):
        self.in_use, self.interval, self.read = backends, interval, read
        self.readings: dict[str, list[ChipReading]] = {}
        self.read_at: float | None = None
        self._task: asyncio.Task | None = None

    @property
    def backends(self) -> list[str]:
        return sorted(set(self.in_use()) - {"cpu"})

    def start(self) -> None:
        if self.interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._poll())

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def refresh(self) -> None:
        for backend in self.backends:
            try:
                found = await asyncio.to_thread(self.read, backend)
            except Exception:  # a tool printing something new must not stop the gateway
                log.exception("reading %s telemetry failed", backend)
                continue
            if found is None:
                self.readings.pop(backend, None)
            else:
                self.readings[backend] = found
        self.read_at = time.time()

    async def _poll(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.interval)

    def as_json(self) -> dict:
        return {"read_at": self.read_at, "backends": self.backends,
                "devices": {b: [r.__dict__ for r in rs] for b, rs in self.readings.items()}}


class DeviceCollector:
    """A prometheus-client collector: device gauges from DeviceTelemetry, process figures from the runners."""

    def __init__(self, telemetry: DeviceTelemetry, runners: Callable[[], Iterable]):
        self.telemetry, self.runners = telemetry, runners

    def describe(self):
        return []  # collected fresh on each scrape

    def collect(self):
        yield from _chips(self.telemetry.readings.get("cann", []), NPU, ["id", "model_name"])
        npus = self.telemetry.readings.get("cann", [])
        if npus:
            health = GaugeMetricFamily("npu_chip_info_health_status", "1 when npu-smi says OK", labels=["id", "model_name"])
            for r in npus:
                health.add_metric([str(r.id), r.model_name], 1.0 if r.healthy else 0.0)
            yield health
        yield from _chips(self.telemetry.readings.get("cuda", []), GPU, ["gpu", "modelName"])
        yield from _processes(self.runners())


def _chips(readings: list[ChipReading], names: dict, labels: list[str]):
    for name, (why, field) in names.items():
        family = GaugeMetricFamily(name, why, labels=labels)
        for r in readings:
            value = getattr(r, field)
            if value is not None:
                family.add_metric([str(r.id), r.model_name], float(value))
        if family.samples:
            yield family


def _processes(runners: Iterable):
    rss = GaugeMetricFamily("launcher_process_resident_memory_bytes", "Resident memory of an engine or worker "
                            "process and its children", labels=["model", "process"])
    cpu = CounterMetricFamily("launcher_process_cpu_seconds", "CPU time of an engine or worker process and its "
                              "children", labels=["model", "process"])
    for runner in runners:
        for up in runner.upstreams:
            pid = up.process.pid
            if not pid or not alive(pid):
                continue
            tree = {pid} | descendants(pid)
            labels = [runner.name, up.process.spec.name]
            rss.add_metric(labels, sum(rss_mib(p) for p in tree) * 2**20)
            cpu.add_metric(labels, sum(cpu_seconds(p) for p in tree))
    yield rss
    yield cpu
