"""What the vendor tools say about devices and the processes on them (`npu-smi`, `nvidia-smi`).

Parsers are pure and tested on recorded outputs (910B, 910 with two chips per NPU, 310P; nvidia-smi's
CSV); the readers return None when the tool is absent, so callers show "unknown", never zero.
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass

from .devices import run_tool


@dataclass(frozen=True)
class DeviceProcess:
    device: int | None
    pid: int
    name: str
    memory_mib: int


_NPU_PROC = re.compile(r"^\s*(\d+)\s+(\d+)\s*$")  # "NPU     Chip" cell of a process row


def parse_npu_smi_processes(text: str) -> list[DeviceProcess]:
    """Rows of `npu-smi info`'s process table: | NPU  Chip | Process id | Process name | Process memory(MB) |
    (newer versions add `Process id in container`, which is the pid a containerised launcher sees)."""
    out = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not _NPU_PROC.match(cells[0]) or not cells[1].isdigit() or not cells[3].isdigit():
            continue
        npu = int(_NPU_PROC.match(cells[0]).group(1))
        pid = int(cells[4]) if len(cells) > 4 and cells[4].isdigit() else int(cells[1])
        out.append(DeviceProcess(npu, pid, cells[2], int(cells[3])))
    return out


def parse_nvidia_smi_apps(text: str) -> list[DeviceProcess]:
    """`nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,noheader,nounits`."""
    out = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[0].isdigit() and parts[2].isdigit():
            out.append(DeviceProcess(None, int(parts[0]), parts[1], int(parts[2])))
    return out


def device_processes(backend: str) -> list[DeviceProcess] | None:
    """Processes holding device memory now, or None when there is no tool to ask (cpu, or not installed)."""
    if backend == "cann" and shutil.which("npu-smi"):
        return parse_npu_smi_processes(run_tool(["npu-smi", "info"]))
    if backend == "cuda" and shutil.which("nvidia-smi"):
        return parse_nvidia_smi_apps(run_tool(["nvidia-smi", "--query-compute-apps=pid,process_name,used_memory",
                                           "--format=csv,noheader,nounits"]))
    return None


@dataclass(frozen=True)
class ChipReading:
    """One NPU chip or GPU as its vendor tool shows it. Memory in MiB; None where the tool has no value."""
    id: int                        # the device id launcher's configs use (ASCEND_RT_VISIBLE_DEVICES / CUDA)
    model_name: str
    healthy: bool
    utilization: float | None      # AICore % on NPUs, GPU util % on GPUs
    temperature: float | None      # °C
    power: float | None            # W
    hbm_used: int | None = None    # 910: HBM; GPU: framebuffer
    hbm_total: int | None = None
    memory_used: int | None = None  # 310P's device memory (it has no HBM)
    memory_total: int | None = None


_PAIR = re.compile(r"(\d+)\s*/\s*(\d+)")
_BUS = re.compile(r"^[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None  # "-", "N/A": not measured


def parse_npu_smi_info(text: str) -> list[ChipReading]:
    """The chip table of `npu-smi info`: two lines per chip,
        | NPU  Name | Health | Power(W)  Temp(C)  Hugepages-Usage(page) |
        | Chip [Device|Phy-ID] | Bus-Id | AICore(%)  Memory-Usage(MB)  [HBM-Usage(MB)] |
    The id is the second line's Device (310P) or Phy-ID (two chips per NPU) column, else the NPU id (910B)."""
    out: list[ChipReading] = []
    first: list[str] | None = None
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3:
            first = None if len(cells) > 3 else first
            continue
        head = cells[0].split()
        if len(head) == 2 and head[0].isdigit() and not head[1].isdigit() and not _BUS.match(cells[1]):
            first = [head[0], head[1], cells[1], cells[2]]
        elif first and head and all(h.isdigit() for h in head) and _BUS.match(cells[1]):
            npu, name, health, stats = first
            stat = stats.split()
            usage = cells[2].split()
            pairs = [(int(a), int(b)) for a, b in _PAIR.findall(cells[2])]
            memory, hbm = (pairs + [None, None])[:2] if len(pairs) != 1 else (pairs[0], None)
            out.append(ChipReading(
                id=int(head[1]) if len(head) > 1 else int(npu), model_name=name, healthy=health.upper() == "OK",
                utilization=_number(usage[0]) if usage else None,
                temperature=_number(stat[1]) if len(stat) > 1 else None,
                power=_number(stat[0]) if stat else None,
                hbm_used=hbm[0] if hbm else None, hbm_total=hbm[1] if hbm else None,
                memory_used=memory[0] if memory and not hbm else None,
                memory_total=memory[1] if memory and not hbm else None))
            first = None
    return out


NVIDIA_QUERY = ["nvidia-smi", "--query-gpu=index,name,memory.used,memory.total,utilization.gpu,temperature.gpu,"
                "power.draw", "--format=csv,noheader,nounits"]


def parse_nvidia_smi_gpus(text: str) -> list[ChipReading]:
    """`nvidia-smi --query-gpu=index,name,memory.used,memory.total,utilization.gpu,temperature.gpu,power.draw
    --format=csv,noheader,nounits` ("[N/A]" where a board does not report a value)."""
    out = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 7 or not parts[0].isdigit():
            continue
        used, total = _number(parts[2]), _number(parts[3])
        out.append(ChipReading(int(parts[0]), parts[1], True, _number(parts[4]), _number(parts[5]),
                               _number(parts[6]), int(used) if used is not None else None,
                               int(total) if total is not None else None))
    return out


def device_readings(backend: str) -> list[ChipReading] | None:
    """Every chip of `backend` now, or None when there is no tool to ask. Blocking: run it off the loop."""
    if backend == "cann" and shutil.which("npu-smi"):
        return parse_npu_smi_info(run_tool(["npu-smi", "info"]))
    if backend == "cuda" and shutil.which("nvidia-smi"):
        return parse_nvidia_smi_gpus(run_tool(NVIDIA_QUERY))
    return None
