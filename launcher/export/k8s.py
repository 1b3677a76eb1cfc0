"""`launch export k8s`: the Kubernetes objects for one config, by its layout.

    single, layer, replicas   Deployment + Service + ConfigMap (+ the models' PVC): one pod runs launch
    rpc                       LeaderWorkerSet: the leader runs the gateway and llama-server --rpc, the
                              workers ggml's rpc-server; a group restarts as a whole
    ep_tp                     MindCluster AscendJob (Volcano; ascend-operator writes hccl.json into the
                              rings-config-<job> ConfigMap), or with --format mpijob a Kubeflow MPIJob

Every launch pod runs the same plain line, `launch --config /etc/launcher/config.yaml`, and takes its role
from what the operator injects (pods/roles.py). The device plugin gives each pod its NPUs or GPUs:
requests = limits = what the plan needs, and no host device numbers anywhere.
"""
from __future__ import annotations

import json

from ..config.model import Config
from ..errors import LauncherError
from .pieces import RANK_TABLE_DIR, Export, ExportOptions
from .pod_config import CONFIG_PATH

LWS_API, ASCEND_API, MPI_API = "leaderworkerset.x-k8s.io/v1", "mindxdl.gitee.com/v1", "kubeflow.org/v2beta1"
ASCENDJOB_PORT = 2222          # the port ascend-operator's Service names `ascendjob-port`
RING_CONTROLLER = "ascend-910b"


def export_k8s(config: Config, config_text: str, opts: ExportOptions) -> list[dict]:
    """Every object, in the order `kubectl apply` should create them."""
    modes = {m.parallel.mode for m in config.models}
    if len(config.models) > 1 and modes & {"rpc", "ep_tp"}:
        raise LauncherError("an rpc or ep_tp model is exported alone: one config per job")
    ex = Export(config, config_text, opts)
    if "rpc" in modes:
        return leader_worker_set(ex)
    if "ep_tp" in modes:
        return mpi_job(ex) if opts.format == "mpijob" else ascend_job(ex)
    if opts.format == "mpijob":
        raise LauncherError("--format mpijob is for parallel.mode ep_tp")
    return one_host(ex)


def _template(ex: Export, labels: dict, spec: dict) -> dict:
    return {"metadata": {"labels": labels, "annotations": ex.pod_annotations()}, "spec": spec}


def one_host(ex: Export) -> list[dict]:
    devices = ex.pod_devices()
    labels = ex.labels | {"app.kubernetes.io/component": "gateway"}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": ex.meta(ex.name, "gateway"),
        "spec": {"replicas": 1,
                 # devices are not shared: the old pod lets go of its NPUs before the new one asks for them
                 "strategy": {"type": "Recreate" if devices else "RollingUpdate"},
                 "selector": {"matchLabels": labels},
                 "template": _template(ex, labels, ex.pod_spec([ex.container("launcher", devices)]))}}
    return [ex.config_map(), *ex.claim(), deployment, ex.service(labels)]


def leader_worker_set(ex: Export) -> list[dict]:
    spec = ex.config.models[0]
    par = spec.parallel
    per_pod = 0 if spec.devices.backend == "cpu" else 1     # each rank: one device of its own pod
    leader = ex.container("launcher", per_pod)
    worker = ex.container("rpc-server", per_pod, serves=False, models=False,
                          extra_ports=[{"name": "rpc", "containerPort": par.rpc_port, "protocol": "TCP"}])
    worker["readinessProbe"] = {"tcpSocket": {"port": "rpc"}, "periodSeconds": 5}
    labels = dict(ex.labels)
    lws = {"apiVersion": LWS_API, "kind": "LeaderWorkerSet", "metadata": ex.meta(ex.name, "gateway"),
           "spec": {"replicas": 1, "startupPolicy": "LeaderCreated",
                    "leaderWorkerTemplate": {
                        "size": par.ranks,
                        # a rank that restarts leaves llama-server's --rpc list pointing at nothing: the whole
                        # group starts again
                        "restartPolicy": "RecreateGroupOnPodRestart",
                        "leaderTemplate": _template(ex, labels | {"app.kubernetes.io/component": "gateway"},
                                                    ex.pod_spec([leader])),
                        "workerTemplate": {"metadata": {"labels": labels | {"app.kubernetes.io/component": "rpc"}},
                                           "spec": ex.pod_spec([worker], models=False)}}}}
    selector = {"leaderworkerset.sigs.k8s.io/name": ex.name, "leaderworkerset.sigs.k8s.io/worker-index": "0"}
    return [ex.config_map(), *ex.claim(), lws, ex.service(selector)]


def _npus(ex: Export) -> int:
    par = ex.config.models[0].parallel
    return par.ranks * (par.devices_per_rank or 1)


def ascend_job(ex: Export) -> list[dict]:
    npus = _npus(ex)
    if npus > ex.opts.npus_per_node:
        raise LauncherError(f"{npus} NPUs are more than one node's {ex.opts.npus_per_node}: an AscendJob runs the "
                            "ranks in one pod here; use --format mpijob to spread them over nodes")
    rings = f"rings-config-{ex.name}"
    labels = ex.labels | {"app.kubernetes.io/component": "gateway", "ring-controller.atlas": RING_CONTROLLER}
    env = [{"name": "XDL_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
           # what the device plugin assigned, for Ascend Docker Runtime (the whole-card scheduling of Volcano)
           {"name": "ASCEND_VISIBLE_DEVICES",
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{ex.opts.npu_resource}']"}}},
           {"name": "RANK_TABLE_FILE", "value": f"{RANK_TABLE_DIR}/hccl.json"}]
    container = ex.container("ascend", npus, env=env,
                             extra_ports=[{"name": "ascendjob-port", "containerPort": ASCENDJOB_PORT, "protocol": "TCP"}],
                             extra_mounts=[{"name": "ranktable", "mountPath": RANK_TABLE_DIR}])
    pod = ex.pod_spec([container], extra_volumes=[{"name": "ranktable", "configMap": {"name": rings}}])
    meta = ex.meta(ex.name)
    meta["labels"] |= {"framework": "pytorch", "ring-controller.atlas": RING_CONTROLLER}   # ascend-operator's
    job = {"apiVersion": ASCEND_API, "kind": "AscendJob", "metadata": meta,
           "spec": {"schedulerName": "volcano",
                    "runPolicy": {"schedulingPolicy": {"minAvailable": 1, "queue": "default"}},
                    "successPolicy": "AllWorkers",
                    "replicaSpecs": {"Master": {"replicas": 1, "restartPolicy": "OnFailure",
                                                "template": _template(ex, labels, pod)}}}}
    # ascend-operator fills this ConfigMap with the rank table and flips its status to "completed"
    table = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": ex.meta(rings, "rank-table"),
             "data": {"hccl.json": json.dumps({"status": "initializing"})}}
    return [ex.config_map(), table, *ex.claim(), job, ex.service(labels)]


def mpi_job(ex: Export) -> list[dict]:
    spec = ex.config.models[0]
    par = spec.parallel
    per_rank = par.devices_per_rank or 1
    ranks_per_pod = max(1, min(par.ranks, ex.opts.npus_per_node // per_rank))
    workers = -(-par.ranks // ranks_per_pod)
    if workers > 1 and not (par.hccl and par.hccl.device_ips):
        raise LauncherError(f"{par.ranks} ranks over {workers} worker pods: the rank table needs every NPU's address "
                            "(parallel.hccl.device_ips, from hccn_tool -i N -ip -g on each node); an MPIJob has no "
                            "operator to write it")
    launcher = ex.container("launcher", 0, serves=False, models=False,
                            command=["mpirun", "-np", str(par.ranks), "--allow-run-as-root", "launch", "--config",
                                     CONFIG_PATH])
    # Rank 0, on the first worker, serves the gateway; the workers are reached by mpirun over ssh (the MPI
    # operator's way), so their command is sshd's
    worker = ex.container("worker", ranks_per_pod * per_rank, serves=False, command=["/usr/sbin/sshd", "-De"],
                          extra_ports=ex.ports(), env=ex.secret_env())
    job = {"apiVersion": MPI_API, "kind": "MPIJob", "metadata": ex.meta(ex.name, "gateway"),
           "spec": {"slotsPerWorker": ranks_per_pod, "mpiImplementation": "OpenMPI",
                    "runPolicy": {"cleanPodPolicy": "Running"},
                    "mpiReplicaSpecs": {
                        "Launcher": {"replicas": 1, "restartPolicy": "OnFailure",
                                     "template": {"metadata": {"labels": ex.labels | {
                                         "app.kubernetes.io/component": "mpirun"}},
                                         "spec": ex.pod_spec([launcher], models=False)}},
                        "Worker": {"replicas": workers, "restartPolicy": "OnFailure",
                                   "template": _template(ex, ex.labels | {"app.kubernetes.io/component": "ranks"},
                                                         ex.pod_spec([worker]))}}}}
    selector = {"training.kubeflow.org/job-name": ex.name, "training.kubeflow.org/job-role": "worker",
                "training.kubeflow.org/replica-index": "0"}
    return [ex.config_map(), *ex.claim(), job, ex.service(selector)]
