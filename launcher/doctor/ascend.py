"""The Ascend host, checked: driver and firmware (npu-smi), the CANN toolkit (its install info) and whether it
suits the driver, whether set_env.sh was sourced, the visible NPUs with their health and free HBM, the chip
against build.soc_type, and hccn_tool's link state and device addresses for HCCL."""
from __future__ import annotations

import os
import platform
import re
import shutil
from pathlib import Path
from typing import Mapping

from ..devices import TOOLKIT_ENV, VISIBLE_ENV, detect, parse_hccn_ip, run_tool
from ..telemetry import parse_npu_smi_info, parse_npu_smi_processes
from ..toolchain.recipe import cann_toolkit
from .findings import ERROR, OK, WARN, Finding

MIN_CANN = "8.0.RC2"  # llama.cpp's CANN backend (docs/backend/CANN.md)
# The driver (Ascend HDK) each CANN release was released with, from Huawei's release pairing: a driver older
# than its CANN's is the classic "aclInit failed" / "drvError" on start. A newer driver runs older CANN.
CANN_DRIVER = {"7.0": "23.0.0", "8.0.RC1": "24.1.rc1", "8.0.RC2": "24.1.rc2", "8.0.RC3": "24.1.rc3",
               "8.0.0": "24.1.0", "8.1.RC1": "25.0.rc1", "8.2.RC1": "25.2.0", "8.3.RC1": "25.3.rc1"}
DEFAULT_ROOTS = ("/usr/local/Ascend",)


def version_key(text: str) -> tuple:
    """`24.1.rc2` < `24.1.0` < `24.1.1`; CANN's `8.0.RC2` < `8.0.0` alike (an RC precedes its release)."""
    parts = []
    for piece in re.split(r"[.\-]", text.lower()):
        rc = re.fullmatch(r"rc(\d+)", piece)
        if rc:
            parts.append((0, int(rc.group(1))))
        elif piece.isdigit():
            parts.append((1, int(piece)))
        else:
            break  # alpha001 and the like: the release it precedes counts
    return tuple(parts)


def needed_driver(cann: str) -> str | None:
    for length in (3, 2):  # 8.2.RC1 exactly, else its train (7.0)
        key = ".".join(cann.split(".")[:length])
        if key in CANN_DRIVER:
            return CANN_DRIVER[key]
    return None


def ascend_root(env: Mapping[str, str]) -> Path | None:
    """Where the driver and toolkit are installed: LAUNCHER_ASCEND_ROOT, the default, or a user's ~/Ascend."""
    home = env.get("HOME")
    for root in (env.get("LAUNCHER_ASCEND_ROOT"), *DEFAULT_ROOTS, f"{home}/Ascend" if home else None):
        if root and Path(root).is_dir():
            return Path(root)
    return None


def _field(text: str, name: str) -> str | None:
    match = re.search(rf"^\s*{re.escape(name)}\s*[:=]\s*(\S+)", text, re.MULTILINE | re.IGNORECASE)
    return match.group(1) if match else None


def toolkit_version(home: Path) -> str | None:
    """From `<toolkit>/<arch>-linux/ascend_toolkit_install.info` (`version=8.2.RC1`)."""
    for info in [home / f"{platform.machine()}-linux" / "ascend_toolkit_install.info",
                 *sorted(home.glob("*-linux/ascend_toolkit_install.info"))]:
        if info.is_file():
            return _field(info.read_text(errors="replace"), "version")
    return None


def driver_findings(info: str, env: Mapping[str, str]) -> tuple[list[Finding], str | None]:
    driver = _field(info, "Version") or (re.search(r"npu-smi\s+(\S+)", info) or [None, None])[1]
    root = ascend_root(env)
    if not driver and root and (root / "driver" / "version.info").is_file():
        driver = _field((root / "driver" / "version.info").read_text(), "Version")
    out = [Finding(OK, "driver", f"{driver} (npu-smi)") if driver else
           Finding(ERROR, "driver", "npu-smi printed no driver version", "reinstall the Ascend driver (HDK)")]
    board = run_tool(["npu-smi", "info", "-t", "board", "-i", str(_first_npu(info))])
    firmware = _field(board, "Firmware Version")
    if not firmware and root and (root / "firmware" / "version.info").is_file():
        firmware = _field((root / "firmware" / "version.info").read_text(), "Version")
    out.append(Finding(OK, "firmware", firmware) if firmware else
               Finding(WARN, "firmware", "no firmware version (npu-smi info -t board)", "install the NPU firmware"))
    return out, driver


def _first_npu(info: str) -> int:
    chips = parse_npu_smi_info(info)
    return chips[0].id if chips else 0


def toolkit_findings(env: Mapping[str, str], driver: str | None) -> list[Finding]:
    exported = cann_toolkit(env)
    root = ascend_root(env)
    home = Path(exported) if exported else (root / "ascend-toolkit" / "latest" if root else None)
    if home is None or not home.is_dir():
        return [Finding(ERROR, "CANN toolkit", "not found" + (f" at {home}" if home else ""),
                        f"install the CANN toolkit ({MIN_CANN} or newer) and source its set_env.sh")]
    version = toolkit_version(home)
    out = [Finding(OK if version else WARN, "CANN toolkit", f"{version or 'unknown version'} at {home}",
                   "" if version else f"{home} has no ascend_toolkit_install.info: reinstall the toolkit")]
    if version and version_key(version) < version_key(MIN_CANN):
        out.append(Finding(ERROR, "CANN version", f"{version} is older than {MIN_CANN}, the oldest llama.cpp's CANN "
                           "backend builds with", f"install CANN {MIN_CANN} or newer"))
    set_env = home.parent / "set_env.sh"
    if exported:
        name = next(n for n in TOOLKIT_ENV if env.get(n))
        out.append(Finding(OK, "set_env.sh", f"sourced ({name}={exported})"))
    else:
        out.append(Finding(ERROR, "set_env.sh", "not sourced: ASCEND_TOOLKIT_HOME is not set, so neither the build "
                           "nor the engines find CANN's libraries", f"source {set_env}"))
    need = needed_driver(version) if version else None
    if version and driver and need:
        if version_key(driver) < version_key(need):
            out.append(Finding(ERROR, "driver/toolkit", f"driver {driver} is older than CANN {version} needs "
                               f"({need} or newer): engines fail at aclInit", f"upgrade the driver and firmware to "
                               f"{need} or newer, or install the CANN release that matches driver {driver}"))
        else:
            out.append(Finding(OK, "driver/toolkit", f"driver {driver} suits CANN {version} (needs {need}+)"))
    elif version and driver:
        out.append(Finding(WARN, "driver/toolkit", f"launcher does not know which driver CANN {version} needs",
                           "check the CANN release notes' version pairing"))
    return out


def npu_findings(info: str, soc_type: str | None, env: Mapping[str, str]) -> list[Finding]:
    chips = parse_npu_smi_info(info)
    visible = detect("cann")
    var = VISIBLE_ENV["cann"]
    seen = f" ({var}={env[var]})" if env.get(var) else ""
    if not visible.ids:
        return [Finding(ERROR, "NPUs", f"none visible{seen}", f"check `npu-smi info`; unset or fix {var}")]
    names = sorted({c.model_name for c in chips if c.id in visible.ids})
    out = [Finding(OK, "NPUs", f"{len(visible.ids)} visible{seen}: {list(visible.ids)}, {', '.join(names)}")]
    procs = parse_npu_smi_processes(info)
    for chip in chips:
        if chip.id not in visible.ids:
            continue
        if not chip.healthy:
            rest = ",".join(str(i) for i in visible.ids if i != chip.id)
            out.append(Finding(ERROR, f"NPU {chip.id}", "health is not OK", f"`npu-smi info -t health -i {chip.id}`; "
                               f"until it is fixed leave it out: export {var}={rest}"))
        total = chip.hbm_total or chip.memory_total
        used = chip.hbm_used if chip.hbm_total else chip.memory_used
        if total and used is not None and used > total / 2:
            holders = ", ".join(f"{p.name} (pid {p.pid}, {p.memory_mib} MB)" for p in procs if p.device == chip.id)
            out.append(Finding(WARN, f"NPU {chip.id}", f"{used} of {total} MB in use" + (f" by {holders}" if holders
                               else ""), "stop that process, or leave the NPU out of this deployment"))
    if soc_type and names:
        chip_soc = f"Ascend{names[0]}" if not names[0].startswith("Ascend") else names[0]
        if chip_soc.lower() != soc_type.lower():
            out.append(Finding(ERROR, "soc_type", f"build.soc_type {soc_type} but the NPUs are {chip_soc}",
                               f"set build.soc_type: {chip_soc}, or leave it out (detected from npu-smi)"))
        else:
            out.append(Finding(OK, "soc_type", f"{soc_type} matches the NPUs"))
    return out


def hccn_findings(ids: tuple[int, ...], needed: bool) -> list[Finding]:
    """Link state and address of each NPU's network port: what an HCCL rank table (ep_tp) needs."""
    if not shutil.which("hccn_tool"):
        return [Finding(ERROR if needed else WARN, "hccn_tool", "not on PATH: HCCL rank tables cannot be read",
                        "add /usr/local/Ascend/driver/tools to PATH")]
    out, up = [], []
    for i in ids:
        link = _field(run_tool(["hccn_tool", "-i", str(i), "-link", "-g"]), "link status")
        ip = parse_hccn_ip(run_tool(["hccn_tool", "-i", str(i), "-ip", "-g"]))
        if link and link.upper() == "UP" and ip:
            up.append(f"{i}={ip}")
        else:
            out.append(Finding(ERROR if needed else WARN, f"HCCN {i}", f"link {link or 'unknown'}, "
                               f"address {ip or 'none'}", f"check the cable and `hccn_tool -i {i} -link -g`; set the "
                               f"address with `hccn_tool -i {i} -ip -s address A netmask M`"))
    return ([Finding(OK, "HCCN", "links UP: " + ", ".join(up))] if up else []) + out


def ascend_findings(env: Mapping[str, str] | None = None, soc_type: str | None = None,
                    hccl: bool = False) -> list[Finding]:
    env = os.environ if env is None else env
    info = run_tool(["npu-smi", "info"])
    out, driver = driver_findings(info, env)
    out += toolkit_findings(env, driver)
    out += npu_findings(info, soc_type, env)
    out += hccn_findings(detect("cann").ids, hccl)
    return out
