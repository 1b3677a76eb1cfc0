"""The HCCL rank table (`hccl.json`, version 1.0) and HCCL_* variables for the Ascend fork's ranks.

One entry per NPU: `server_id` is the host's address, `device_id` the NPU as the host numbers it,
`device_ip` its HCCS/RoCE address (`hccn_tool -i N -ip -g`), `rank_id` its rank in the job.
"""
from __future__ import annotations

import json

from ..config.model import Hccl

ENV = (("connect_timeout", "HCCL_CONNECT_TIMEOUT"), ("exec_timeout", "HCCL_EXEC_TIMEOUT"),
       ("if_ip", "HCCL_IF_IP"), ("socket_ifname", "HCCL_SOCKET_IFNAME"), ("buffsize", "HCCL_BUFFSIZE"))


def rank_table(servers: list[tuple[str, list[tuple[int, str]]]]) -> str:
    """servers: (server address, [(device id, device address)]) in rank order."""
    rank = 0
    server_list = []
    for server_id, devices in servers:
        entries = []
        for device_id, device_ip in devices:
            entries.append({"device_id": str(device_id), "device_ip": device_ip, "rank_id": str(rank)})
            rank += 1
        server_list.append({"server_id": server_id, "device": entries, "host_nic_ip": "reserve"})
    return json.dumps({"version": "1.0", "server_count": str(len(servers)), "server_list": server_list,
                       "status": "completed"}, indent=1) + "\n"


def hccl_env(hccl: Hccl, table_path: str) -> list[tuple[str, str]]:
    """RANK_TABLE_FILE and the HCCL_* the config sets, for `mpirun -x`."""
    env = [("RANK_TABLE_FILE", table_path)]
    for key, name in ENV:
        value = getattr(hccl, key)
        if value is not None:
            env.append((name, str(value)))
    return env
