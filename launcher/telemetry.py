"""What the vendor tools say about devices and the processes on them (`npu-smi`, `nvidia-smi`).

Parsers are pure and tested on recorded outputs; the readers return None when the tool is absent,
so callers show "unknown", never zero.
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
