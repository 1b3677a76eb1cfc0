"""Checks of a job across hosts: the hostfile (slots vs ranks), each host's devices, the ports, and
the HCCL rank table's addresses. They read the hostfile beside the config, so they run offline too."""
from __future__ import annotations

from pathlib import Path

from ..config.convert import gateway_port
from ..config.hostfile import Hostfile, is_ip, parse_hostfile
from ..config.inherit import ModelView
from ..config.model import Gateway
from ..config.problems import Problem

HF = ("parallel", "hostfile")


def hostfile_checks(v: ModelView, base_dir: Path) -> list[Problem]:
    name = v.get("parallel", "hostfile", kind=str)
    mode = v.get("parallel", "mode", kind=str)
    hccl = v.get("parallel", "hccl", kind=dict)
    out = _hccl_checks(v, hccl) if hccl is not None else []
    if not name or mode not in ("rpc", "ep_tp"):
        return out
    try:
        hostfile = parse_hostfile((base_dir / name).read_text())
    except (OSError, UnicodeDecodeError):
        return out   # machine checks say it is missing
    out += [v.problem(HF, f"hostfile {name}: {e}", value=name) for e in hostfile.errors]
    ranks = v.get("parallel", "ranks", kind=int) or 1
    if not hostfile.entries:
        return out + [v.problem(HF, f"hostfile {name} names no hosts", value=name)]
    args = v.get("parallel", "mpirun_args", kind=list) or []
    if hostfile.total_slots < ranks and "--oversubscribe" not in args:
        out.append(v.problem(HF, f"hostfile {name} has {hostfile.total_slots} slot(s) for {ranks} ranks: mpirun "
                             "would refuse to start", value=name,
                             hint="add slots=N to its lines (one slot per rank), or lower parallel.ranks"))
    out += _device_checks(v, hostfile, ranks)
    out += _port_checks(v, ranks, mode)
    if hccl is not None and mode == "ep_tp":
        out += _hccl_host_checks(v, hccl, hostfile, ranks)
    return out


def _device_checks(v: ModelView, hostfile: Hostfile, ranks: int) -> list[Problem]:
    ids = v.get("devices", "ids", kind=list)
    if not ids or (v.get("devices", "backend", kind=str) or "cpu") == "cpu":
        return []
    mode = v.get("parallel", "mode", kind=str)
    per = (v.get("parallel", "devices_per_rank", kind=int) or 1) if mode == "ep_tp" else 1
    out = []
    for host in hostfile.hosts:
        here = hostfile.ranks_on(host, ranks)
        if len(here) * per > len(ids):
            out.append(v.problem(("devices", "ids"), f"host {host} runs {len(here)} rank(s) (ranks "
                                 f"{here[0]}-{here[-1]}) x {per} device(s), but devices.ids lists {len(ids)} per host",
                                 value=ids, hint="devices.ids names each host's devices; list enough for its slots"))
    return out


def _port_checks(v: ModelView, ranks: int, mode: str) -> list[Problem]:
    if mode != "rpc":
        return []
    port = v.get("parallel", "rpc_port", kind=int) or 50052
    last = port + ranks - 2
    out = []
    if last > 65535:
        out.append(v.problem(("parallel", "rpc_port"), f"ranks 1-{ranks - 1} listen on ports {port}-{last}, past "
                             "65535", value=port))
    gateway = gateway_port(v.src.data) if isinstance(v.src.data, dict) else Gateway.port
    if port <= gateway <= last:
        out.append(v.problem(("parallel", "rpc_port"), f"the gateway's port {gateway} is among the RPC ports "
                             f"{port}-{last} (a rank on the gateway's host would take it)", value=port))
    return out


def _hccl_checks(v: ModelView, hccl: dict) -> list[Problem]:
    """Without the hostfile: where HCCL applies, and one address per device on a single host."""
    mode = v.get("parallel", "mode", kind=str)
    if mode != "ep_tp" or v.get("devices", "backend", kind=str) != "cann":
        return [v.problem(("parallel", "hccl"), "parallel.hccl is used only by mode ep_tp on cann (the Ascend "
                          "fork's HCCL ranks)", hint="upstream llama.cpp's rpc mode does not use HCCL")]
    ips = hccl.get("device_ips")
    out = []
    every = [ip for group in (ips.values() if isinstance(ips, dict) else [ips or []]) if isinstance(group, list)
             for ip in group]
    repeated = sorted({ip for ip in every if every.count(ip) > 1})
    if repeated:
        out.append(v.problem(("parallel", "hccl", "device_ips"), f"device addresses repeat: {', '.join(repeated)}",
                             hint="each NPU has its own address (hccn_tool -i N -ip -g)"))
    ids = v.get("devices", "ids", kind=list)
    if isinstance(ips, list) and ids and len(ips) != len(ids):
        out.append(v.problem(("parallel", "hccl", "device_ips"), f"{len(ips)} device address(es) for "
                             f"{len(ids)} devices in devices.ids: the rank table needs one per device", value=ips))
    if isinstance(ips, dict) and not v.get("parallel", "hostfile"):
        out.append(v.problem(("parallel", "hccl", "device_ips"), "device_ips per host needs parallel.hostfile",
                             hint="on one host give a list"))
    return out


def _hccl_host_checks(v: ModelView, hccl: dict, hostfile: Hostfile, ranks: int) -> list[Problem]:
    out = []
    names = [h for h in hostfile.hosts if not is_ip(h)]
    if names:
        out.append(v.problem(HF, f"the HCCL rank table names each server by its IP address; the hostfile names "
                             f"{', '.join(names)}", hint="write the hosts' addresses in the hostfile"))
    ips = hccl.get("device_ips")
    if isinstance(ips, list) and len(hostfile.hosts) > 1:
        out.append(v.problem(("parallel", "hccl", "device_ips"), f"{len(hostfile.hosts)} hosts: give device_ips per "
                             "host, keyed as the hostfile names them", value=ips))
    elif isinstance(ips, dict):
        for host in hostfile.hosts:
            here = hostfile.ranks_on(host, ranks)
            got = ips.get(host)
            if got is None:
                out.append(v.problem(("parallel", "hccl", "device_ips"), f"no device addresses for host {host}",
                                     hint=f"hosts in the hostfile: {', '.join(hostfile.hosts)}"))
            elif isinstance(got, list) and len(got) < len(here):
                out.append(v.problem(("parallel", "hccl", "device_ips", host), f"host {host} runs {len(here)} "
                                     f"rank(s), one per NPU, but has {len(got)} device address(es)", value=got))
        for host in ips:
            if host not in hostfile.hosts:
                out.append(v.problem(("parallel", "hccl", "device_ips", host), f"host {host} is not in the hostfile",
                                     hint=f"hosts in the hostfile: {', '.join(hostfile.hosts)}"))
    return out
