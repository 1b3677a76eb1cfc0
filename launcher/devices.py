"""Which accelerators this machine shows, or a device set assumed for another machine.

Detection asks the vendor tools (`npu-smi`, `nvidia-smi`) and honours the
`*_VISIBLE_DEVICES` variables the user already exported, the way the runtimes do.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Mapping

from .errors import LauncherError
from .units import size_mib

BACKENDS = ("cpu", "cann", "cuda")
VISIBLE_ENV = {"cann": "ASCEND_RT_VISIBLE_DEVICES", "cuda": "CUDA_VISIBLE_DEVICES"}
CONTAINER_DEVICES = "ASCEND_VISIBLE_DEVICES"   # Ascend Docker Runtime's: the node's chips this container was given
# llama.cpp names devices CANN0.. / CUDA0.. after the visible-devices renumbering.
DEVICE_PREFIX = {"cann": "CANN", "cuda": "CUDA"}
TOOLKIT_ENV = ("ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH")  # what CANN's set_env.sh exports
DAVINCI = "/dev/davinci[0-9]*"                              # the Ascend driver's device nodes


@dataclass(frozen=True)
class DeviceSet:
    backend: str
    ids: tuple[int, ...] = ()            # host numbering; empty for cpu
    memory_mib: tuple[int, ...] = ()     # per id, when known
    assumed: bool = False                # from --assume-devices, not read off this machine

    def memory_of(self, device_id: int) -> int | None:
        """MiB of one device, or None when unknown (assumed or offline sets, or an id it does not list)."""
        return dict(zip(self.ids, self.memory_mib)).get(device_id)


def parse_assumed(text: str) -> DeviceSet:
    """`cann:8`, `cuda:2`, `cann:0,2,4`, `cann:8x64g` (with each device's memory) or `cpu` -> DeviceSet."""
    match = re.fullmatch(r"(cpu|cann|cuda)(?::(\d+|\d+(?:,\d+)+))?(?:x(\d+(?:\.\d+)?[kmgt]?(?:i?b)?))?",
                         text.strip(), re.IGNORECASE)
    if not match:
        raise LauncherError(f"--assume-devices {text!r}: expected cpu, cann:N, cuda:N, cann:0,1,... or cann:8x64g")
    backend, spec, memory = match.groups()
    backend = backend.lower()
    if backend == "cpu":
        return DeviceSet("cpu", assumed=True)
    if spec is None:
        raise LauncherError(f"--assume-devices {text!r}: say how many devices, e.g. {backend}:8")
    ids = tuple(int(x) for x in spec.split(",")) if "," in spec else tuple(range(int(spec)))
    return DeviceSet(backend, ids, (size_mib(memory),) * len(ids) if memory else (), assumed=True)


def lookup(assume: DeviceSet | None = None, offline: bool = False):
    """backend -> DeviceSet: the assumed set (narrowed by an exported *_VISIBLE_DEVICES, as the runtime
    would), else what this machine shows (asked once per backend), or None when offline (no device checks)."""
    seen: dict[str, DeviceSet | None] = {}

    def get(backend: str) -> DeviceSet | None:
        if backend not in seen:
            seen[backend] = visible_only(assume) if assume is not None else (None if offline else detect(backend))
        return seen[backend]
    return get


@dataclass(frozen=True)
class BackendChoice:
    """The backend of models whose config names none, and why."""
    backend: str
    reason: str


def machine_backend(assume: DeviceSet | None = None, offline: bool = False,
                    env: Mapping[str, str] | None = None) -> BackendChoice:
    """CANN when the host shows Ascend (npu-smi lists NPUs, /dev/davinci* nodes, CANN's set_env.sh was sourced,
    ASCEND_RT_VISIBLE_DEVICES is exported); CUDA when nvidia-smi lists GPUs; else CPU."""
    env = os.environ if env is None else env
    if assume is not None:
        return BackendChoice(assume.backend, f"--assume-devices {assume.backend}"
                             + (f":{len(assume.ids)}" if assume.ids else ""))
    if offline:
        return BackendChoice("cpu", "--offline without --assume-devices: the target machine is unknown")
    npus = parse_npu_smi_list(run_tool(["npu-smi", "info", "-l"])) if shutil.which("npu-smi") else []
    if npus:  # the list alone: each NPU's memory is read once, by detect(), when a plan needs it
        return BackendChoice("cann", f"npu-smi lists {len(npus)} NPU(s)")
    nodes = sorted(glob.glob(DAVINCI))
    if nodes:
        return BackendChoice("cann", f"{nodes[0]} exists (the Ascend driver)")
    for name in TOOLKIT_ENV + (VISIBLE_ENV["cann"],):
        if env.get(name):
            return BackendChoice("cann", f"{name}={env[name]} is exported")
    gpus = _query_cuda()
    if gpus:
        return BackendChoice("cuda", f"nvidia-smi lists {len(gpus)} GPU(s)")
    return BackendChoice("cpu", "no Ascend NPU (npu-smi, /dev/davinci*, CANN environment) and no NVIDIA GPU "
                                "(nvidia-smi) here")


def exported_visible(backend: str, env: Mapping[str, str] | None = None) -> tuple[int, ...] | None:
    """The ids of `*_VISIBLE_DEVICES` when the user exported it (host numbering), else None."""
    env = os.environ if env is None else env
    text = env.get(VISIBLE_ENV.get(backend, ""), "")
    if not text.strip():
        return None
    return tuple(int(x) for x in text.split(",") if x.strip().isdigit())


def visible_only(devices: DeviceSet) -> DeviceSet:
    allowed = exported_visible(devices.backend)
    if allowed is None or not devices.ids:
        return devices
    keep = [k for k, i in enumerate(devices.ids) if i in allowed]
    mem = tuple(devices.memory_mib[k] for k in keep) if devices.memory_mib else ()
    return DeviceSet(devices.backend, tuple(devices.ids[k] for k in keep), mem, devices.assumed)


def detect(backend: str) -> DeviceSet:
    """Devices of `backend` visible to processes started from here."""
    if backend == "cpu":
        return DeviceSet("cpu")
    found = _query_cann() if backend == "cann" else _query_cuda()
    if backend == "cann" and os.environ.get(CONTAINER_DEVICES):
        # In a container given chips by Ascend Docker Runtime (a Kubernetes pod, from the device plugin):
        # npu-smi lists them under the node's ids, the runtime numbers them from 0 for the processes in it.
        found = [(k, mem) for k, (_, mem) in enumerate(found)]
    return visible_only(DeviceSet(backend, tuple(i for i, _ in found), tuple(m for _, m in found)))


def _query_cuda() -> list[tuple[int, int]]:
    if not shutil.which("nvidia-smi"):
        return []
    out = run_tool(["nvidia-smi", "--query-gpu=index,memory.total", "--format=csv,noheader,nounits"])
    rows = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0].isdigit():
            rows.append((int(parts[0]), int(float(parts[1]))))
    return rows


def _query_cann() -> list[tuple[int, int]]:
    if not shutil.which("npu-smi"):
        return []
    ids = parse_npu_smi_list(run_tool(["npu-smi", "info", "-l"]))
    rows = []
    for npu in ids:
        mem = parse_npu_smi_memory(run_tool(["npu-smi", "info", "-t", "memory", "-i", str(npu)]))
        rows.append((npu, mem or 0))
    return rows


def parse_npu_smi_list(text: str) -> list[int]:
    """`npu-smi info -l` prints one `NPU ID : N` line per card."""
    return [int(m) for m in re.findall(r"NPU ID\s*:\s*(\d+)", text)]


def parse_npu_smi_memory(text: str) -> int | None:
    """HBM capacity in MiB from `npu-smi info -t memory -i N`."""
    match = re.search(r"HBM Capacity\(MB\)\s*:\s*(\d+)", text)
    return int(match.group(1)) if match else None


def run_tool(argv: list[str]) -> str:
    """A vendor tool's stdout, or "" when it cannot run."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def parse_hccn_ip(text: str) -> str | None:
    """`hccn_tool -i N -ip -g` prints `ipaddr:192.168.100.101` (and the netmask)."""
    match = re.search(r"ipaddr\s*:\s*([0-9.]+)", text)
    return match.group(1) if match else None


def host_memory_mib(meminfo: str = "/proc/meminfo") -> int | None:
    """This machine's RAM (MemTotal), the host row's size in memory plans."""
    try:
        with open(meminfo) as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def read_device_ips(ids: tuple[int, ...]) -> tuple[tuple[int, str], ...]:
    """Each NPU's HCCS/RoCE address from `hccn_tool -i N -ip -g` (empty without the tool)."""
    if not shutil.which("hccn_tool"):
        return ()
    found = ((i, parse_hccn_ip(run_tool(["hccn_tool", "-i", str(i), "-ip", "-g"]))) for i in ids)
    return tuple((i, ip) for i, ip in found if ip)
