"""Which role the operator gave this pod, from the environment it injects.

    LeaderWorkerSet   LWS_LEADER_ADDRESS, LWS_GROUP_SIZE, LWS_WORKER_INDEX (0: the leader)
    ascend-operator   RANK_TABLE_FILE (the manifest's: where the rings-config ConfigMap is mounted), and its
                      own RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR (the PyTorch framework's names)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

LEADER_WORKER_SET, ASCEND_OPERATOR = "leaderworkerset", "ascend-operator"


@dataclass(frozen=True)
class PodRole:
    operator: str
    index: int          # LWS: the worker index (0 the leader); ascend-operator: the pod's node rank
    size: int           # LWS: pods in the group; ascend-operator: NPUs of the job (WORLD_SIZE)
    leader: str         # the leader's address (LWS) or the master's (ascend-operator)
    rank_table: str | None = None

    @property
    def is_leader(self) -> bool:
        return self.index == 0


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "")
    return int(value) if value.isdigit() else default


def pod_role(env: Mapping[str, str], mode: str) -> PodRole | None:
    """The role for a model of parallel `mode`, or None outside an operator's pod (or for a layout that needs
    no role: one pod serving alone)."""
    if mode == "rpc" and env.get("LWS_LEADER_ADDRESS") and env.get("LWS_WORKER_INDEX", "").isdigit():
        return PodRole(LEADER_WORKER_SET, int(env["LWS_WORKER_INDEX"]), _int(env, "LWS_GROUP_SIZE", 1),
                       env["LWS_LEADER_ADDRESS"])
    if mode == "ep_tp" and env.get("RANK_TABLE_FILE") and not env.get("OMPI_COMM_WORLD_RANK"):
        return PodRole(ASCEND_OPERATOR, _int(env, "RANK", 0), _int(env, "WORLD_SIZE", 0),
                       env.get("MASTER_ADDR", ""), env["RANK_TABLE_FILE"])
    return None
