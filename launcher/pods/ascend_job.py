"""An ascend-operator (MindCluster) AscendJob pod running EP+TP: the rank table comes from the operator, which
writes it into the rings-config-<job> ConfigMap mounted at RANK_TABLE_FILE and flips its `status` to
`completed` once every pod has its NPUs. The pod waits for that, then runs the job as `launch --config` does
on a host (mpirun -np N llama-mpi-server) with that table as it is: launcher reads no hccn_tool here."""
from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from ..config.model import Config, Hccl
from ..errors import LauncherError
from ..serve import serve
from .roles import PodRole

POLL = 0.5


def wait_for_table(path: str, timeout: float) -> dict:
    deadline, status = time.monotonic() + timeout, "missing"
    while time.monotonic() < deadline:
        try:
            table = json.loads(Path(path).read_text())
            status = str(table.get("status", "no status"))
            if status == "completed":
                return table
        except (OSError, ValueError) as exc:
            status = f"unreadable: {exc}"
        time.sleep(POLL)
    raise LauncherError(f"the rank table {path} was not completed by ascend-operator within {timeout:g} s "
                        f"(status: {status}); is the job's rings-config ConfigMap mounted and the operator running?")


def serve_job(config: Config, role: PodRole, timeout: float = 600.0) -> int:
    spec = config.models[0]
    par = spec.parallel
    print(f"[ascend-operator] waiting for the rank table {role.rank_table}", file=sys.stderr, flush=True)
    table = wait_for_table(role.rank_table, timeout)
    servers = table.get("server_list") or []
    if len(servers) != 1:
        raise LauncherError(f"the rank table lists {len(servers)} servers: launcher runs an AscendJob's ranks in "
                            f"one pod (use launch export k8s --format mpijob across nodes)")
    npus = len(servers[0].get("device") or [])
    if npus != par.ranks * (par.devices_per_rank or 1):
        raise LauncherError(f"the rank table gives this pod {npus} NPU(s), the job needs "
                            f"{par.ranks * (par.devices_per_rank or 1)} (parallel.ranks x devices_per_rank)")
    hccl = replace(par.hccl or Hccl(), rank_table=role.rank_table, device_ips=())
    # The device plugin mounted exactly these NPUs: inside the pod they are numbered from 0.
    ready = replace(spec, parallel=replace(par, hccl=hccl), devices=replace(spec.devices, ids=tuple(range(npus))))
    return serve(replace(config, models=(ready,)))
