"""The pieces every exported layout shares (k8s.py puts them together): names and labels, the launch
container with its ports, probes, key variables and device requests, the volumes, the ConfigMap, the
Service and the models' claim. Objects are plain dicts, written as YAML by the CLI."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from ..config.model import Config, ModelSpec
from ..errors import LauncherError
from .pod_config import CONFIG_DIR, CONFIG_PATH, MODELS_DIR, model_files

GPU_RESOURCE = "nvidia.com/gpu"
PROBE_PERIOD = 10
RANK_TABLE_DIR = "/user/serverid/devindex/config"   # where ascend-operator's rank table is read in the pod
ASCEND_DRIVER = "/usr/local/Ascend/driver"
NPU_SMI = "/usr/local/bin/npu-smi"


@dataclass(frozen=True)
class ExportOptions:
    image: str | None = None              # default: launcher:<backend>, the tag `launch export containerfile` names
    namespace: str | None = None
    npu_resource: str = "huawei.com/Ascend910"
    name: str | None = None
    model_volume: str = "pvc"             # pvc | hostpath
    host_path: str | None = None          # with hostpath: the node's folder of model files
    storage: str | None = None            # the PVC's size (default: the model files' size, plus 20%)
    storage_class: str | None = None
    format: str = "auto"                  # auto | mpijob (ep_tp only)
    devices: int | None = None            # devices per pod, when the config leaves the count open
    npus_per_node: int = 8


def dns_name(text: str) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:50].strip("-")
    return name or "launcher"


class Export:
    def __init__(self, config: Config, config_text: str, opts: ExportOptions):
        self.config, self.text, self.opts = config, config_text, opts
        self.name = dns_name(opts.name or Path(config.file).stem.replace("config_", "").replace("_", "-"))
        self.labels = {"app.kubernetes.io/name": "launcher", "app.kubernetes.io/instance": self.name}
        self.gw = config.gateway
        self.files = model_files(config)

    # --- the pieces every layout shares ---------------------------------------------------------------
    def meta(self, name: str, component: str | None = None, **extra) -> dict:
        labels = dict(self.labels)
        if component:
            labels["app.kubernetes.io/component"] = component
        meta = {"name": name, "labels": labels, **extra}
        if self.opts.namespace:
            meta["namespace"] = self.opts.namespace
        return meta

    @property
    def backend(self) -> str:
        backends = {m.devices.backend for m in self.config.models}
        return "cann" if "cann" in backends else "cuda" if "cuda" in backends else "cpu"

    def device_resources(self, count: int) -> dict:
        if self.backend == "cpu" or count == 0:
            return {}
        resource = self.opts.npu_resource if self.backend == "cann" else GPU_RESOURCE
        return {"requests": {resource: count}, "limits": {resource: count}}

    def ports(self) -> list[dict]:
        ports = [{"name": "http", "containerPort": self.gw.port, "protocol": "TCP"}]
        if self.gw.grpc_port:
            ports.append({"name": "grpc", "containerPort": self.gw.grpc_port, "protocol": "TCP"})
        if self.gw.openai_port:
            ports.append({"name": "openai", "containerPort": self.gw.openai_port, "protocol": "TCP"})
        return ports

    def secret_env(self) -> list[dict]:
        """Key variables the config names, from the Secret <name>-keys (made by the operator, never exported)."""
        names = [self.gw.api_key_env, self.gw.admin_key_env, self.gw.register_key_env,
                 *(k.key_env for k in self.gw.keys)]
        return [{"name": n, "valueFrom": {"secretKeyRef": {"name": f"{self.name}-keys", "key": n}}}
                for n in dict.fromkeys(n for n in names if n)]

    def probes(self) -> dict:
        """Liveness on /health, readiness on /ready, and a startup probe that waits as long as loading may take."""
        starting = max(self.gw.load_timeout, *(m.engine.start_timeout for m in self.config.models))
        return {
            "startupProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": PROBE_PERIOD,
                             "failureThreshold": math.ceil(starting / PROBE_PERIOD) + 1},
            "livenessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": PROBE_PERIOD,
                              "timeoutSeconds": 5, "failureThreshold": 3},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5,
                               "timeoutSeconds": 5, "failureThreshold": 2},
        }

    def volumes(self, models: bool = True) -> tuple[list[dict], list[dict]]:
        """(volumes, mounts): the config, the model files, and on Ascend the host's driver and npu-smi."""
        volumes = [{"name": "config", "configMap": {"name": f"{self.name}-config"}}]
        mounts = [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}]
        if self.files and models:
            if self.opts.model_volume == "hostpath":
                volumes.append({"name": "models", "hostPath": {"path": self.opts.host_path, "type": "Directory"}})
            else:
                volumes.append({"name": "models", "persistentVolumeClaim": {"claimName": f"{self.name}-models",
                                                                            "readOnly": True}})
            mounts.append({"name": "models", "mountPath": MODELS_DIR, "readOnly": True})
        if self.backend == "cann":
            volumes += [{"name": "ascend-driver", "hostPath": {"path": ASCEND_DRIVER}},
                        {"name": "npu-smi", "hostPath": {"path": NPU_SMI, "type": "File"}}]
            mounts += [{"name": "ascend-driver", "mountPath": ASCEND_DRIVER, "readOnly": True},
                       {"name": "npu-smi", "mountPath": NPU_SMI, "readOnly": True}]
        return volumes, mounts

    def container(self, name: str, devices: int, *, serves: bool = True, command: list[str] | None = None,
                  env: list[dict] = (), extra_ports: list[dict] = (), extra_mounts: list[dict] = (),
                  models: bool = True) -> dict:
        _, mounts = self.volumes(models)
        c = {"name": name, "image": self.opts.image or f"launcher:{self.backend}", "imagePullPolicy": "IfNotPresent",
             "command": command or ["launch", "--config", CONFIG_PATH]}
        ports = (self.ports() if serves else []) + list(extra_ports)
        if ports:
            c["ports"] = ports
        all_env = list(env) + (self.secret_env() if serves else [])
        if all_env:
            c["env"] = all_env
        resources = self.device_resources(devices)
        if resources:
            c["resources"] = resources
        c["volumeMounts"] = mounts + list(extra_mounts)
        if serves:
            c.update(self.probes())
        return c

    def pod_annotations(self) -> dict:
        return {"prometheus.io/scrape": "true", "prometheus.io/port": str(self.gw.port), "prometheus.io/path": "/metrics"}

    def pod_spec(self, containers: list[dict], extra_volumes: list[dict] = (), models: bool = True, **extra) -> dict:
        volumes, _ = self.volumes(models)
        return {"terminationGracePeriodSeconds": int(self.gw.drain_timeout) + 15, **extra,
                "containers": containers, "volumes": volumes + list(extra_volumes)}

    def config_map(self) -> dict:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": self.meta(f"{self.name}-config"),
                "data": {"config.yaml": self.text}}

    def service(self, selector: dict) -> dict:
        ports = [{"name": p["name"], "port": p["containerPort"], "targetPort": p["name"], "protocol": "TCP"}
                 for p in self.ports()]
        return {"apiVersion": "v1", "kind": "Service", "metadata": self.meta(self.name),
                "spec": {"type": "ClusterIP", "selector": selector, "ports": ports}}

    def claim(self) -> list[dict]:
        if not self.files or self.opts.model_volume != "pvc":
            return []
        spec = {"accessModes": ["ReadOnlyMany"], "resources": {"requests": {"storage": self.storage()}}}
        if self.opts.storage_class:
            spec["storageClassName"] = self.opts.storage_class
        return [{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": self.meta(f"{self.name}-models"),
                 "spec": spec}]

    def storage(self) -> str:
        if self.opts.storage:
            return self.opts.storage
        sizes = [Path(f).stat().st_size for f in self.files.values() if Path(f).is_file()]
        if len(sizes) < len(self.files):
            return "100Gi"   # a file not on this machine: its size is unknown
        return f"{max(1, math.ceil(sum(sizes) * 1.2 / 2**30))}Gi"

    # --- devices per pod ------------------------------------------------------------------------------
    def devices_of(self, spec: ModelSpec) -> int | None:
        if spec.devices.backend == "cpu":
            return 0
        par = spec.parallel
        if spec.devices.ids is not None:
            return len(spec.devices.ids)
        if par.mode == "single":
            return 1
        if par.mode == "replicas":
            return par.replicas * (par.devices_per_replica or 1)
        if par.mode == "ep_tp":
            return par.ranks * (par.devices_per_rank or 1)
        if par.mode == "rpc":
            return par.ranks
        return None

    def pod_devices(self) -> int:
        if self.opts.devices is not None:
            return self.opts.devices
        counts = [self.devices_of(m) for m in self.config.models]
        if None in counts:
            open_ = [m.name for m, c in zip(self.config.models, counts) if c is None]
            raise LauncherError(f"{', '.join(open_)}: the config leaves the number of devices open (no devices.ids): "
                                f"list them in devices.ids, or give launch export k8s --devices N")
        listed = {i for m in self.config.models if m.devices.ids for i in m.devices.ids}
        return max(len(listed), *counts) if listed else sum(counts)
