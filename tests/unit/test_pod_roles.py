"""Tier 1: `launch` in a pod takes its role from what the operator injects (pods/roles.py), finds the
LeaderWorkerSet's workers by their names, and waits for ascend-operator's rank table."""
from __future__ import annotations

import json
import threading

import pytest

from launcher.errors import LauncherError
from launcher.pods import ascend_job
from launcher.pods.leader_worker import leader_spec, worker_addresses
from launcher.pods.roles import ASCEND_OPERATOR, LEADER_WORKER_SET, PodRole, pod_role
from launcher.validate import load_source

LWS = {"LWS_LEADER_ADDRESS": "gemma-0.gemma.llm.svc.cluster.local", "LWS_GROUP_SIZE": "3", "LWS_WORKER_INDEX": "2"}


def test_roles_come_from_each_operators_variables():
    assert pod_role(LWS, "rpc") == PodRole(LEADER_WORKER_SET, 2, 3, "gemma-0.gemma.llm.svc.cluster.local")
    assert pod_role(LWS | {"LWS_WORKER_INDEX": "0"}, "rpc").is_leader
    assert pod_role(LWS, "single") is None          # a LeaderWorkerSet variable does not make a one-pod model a group
    ascend = {"RANK_TABLE_FILE": "/user/serverid/devindex/config/hccl.json", "RANK": "0", "WORLD_SIZE": "2",
              "MASTER_ADDR": "10.0.0.5"}
    assert pod_role(ascend, "ep_tp") == PodRole(ASCEND_OPERATOR, 0, 2, "10.0.0.5", ascend["RANK_TABLE_FILE"])
    assert pod_role(ascend | {"OMPI_COMM_WORLD_RANK": "1"}, "ep_tp") is None   # a rank under mpirun: not a pod role
    assert pod_role({}, "rpc") is None and pod_role({}, "ep_tp") is None


def test_workers_are_found_by_leaderworkersets_names():
    assert worker_addresses("gemma-0.gemma.llm.svc.cluster.local", 3) == [
        "gemma-0-1.gemma.llm.svc.cluster.local", "gemma-0-2.gemma.llm.svc.cluster.local"]
    assert worker_addresses("gemma-4", 2) == ["gemma-4-1"]


def test_the_leader_serves_one_llama_server_over_the_workers_devices():
    spec = load_source("model: m.gguf\nparallel: {mode: rpc, ranks: 3}\n", "c.yaml", offline=True).config.models[0]
    led = leader_spec(spec, ["10.0.0.2:50052", "10.0.0.3:50052"])
    assert led.parallel.mode == "single" and led.engine.extra_args[-4:] == (
        "--rpc", "10.0.0.2:50052,10.0.0.3:50052", "--n-gpu-layers", "all")


def test_the_rank_table_is_waited_for_until_completed(tmp_path, monkeypatch):
    monkeypatch.setattr(ascend_job, "POLL", 0.02)
    table = tmp_path / "hccl.json"
    table.write_text(json.dumps({"status": "initializing"}))
    with pytest.raises(LauncherError, match="not completed .* within 0.2 s .*status: initializing"):
        ascend_job.wait_for_table(str(table), 0.2)
    done = {"status": "completed", "server_list": [{"server_id": "a", "device": []}]}
    threading.Timer(0.1, lambda: table.write_text(json.dumps(done))).start()
    assert ascend_job.wait_for_table(str(table), 5) == done


def test_in_a_container_given_chips_they_are_numbered_from_zero(monkeypatch):
    """npu-smi in a pod lists the node's ids (4, 5); Ascend Docker Runtime numbers them 0, 1 for the processes
    in it, which is what ASCEND_RT_VISIBLE_DEVICES must say."""
    from launcher import devices
    monkeypatch.setattr(devices, "_query_cann", lambda: [(4, 65536), (5, 65536)])
    monkeypatch.delenv("ASCEND_RT_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("ASCEND_VISIBLE_DEVICES", raising=False)
    assert devices.detect("cann").ids == (4, 5)                 # a host: its own numbering
    monkeypatch.setenv("ASCEND_VISIBLE_DEVICES", "4,5")
    found = devices.detect("cann")
    assert found.ids == (0, 1) and found.memory_of(1) == 65536
