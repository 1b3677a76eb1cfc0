"""The config as the pod reads it, from the user's: models from the model volume, the gateway bound to every
address of the pod, no host device numbers (the device plugin gives the pod its NPUs or GPUs, and launcher
in the pod finds them), no hostfile or RPC address (the operator says where the others are)."""
from __future__ import annotations

import copy
from pathlib import PurePosixPath

import yaml

from ..config.model import Config
from ..errors import LauncherError

CONFIG_DIR = "/etc/launcher"
CONFIG_PATH = f"{CONFIG_DIR}/config.yaml"
MODELS_DIR = "/models"
EMBEDDED = "embedded:"


def model_files(config: Config) -> dict[str, str]:
    """The model files the pods read, by the name they have under /models (two models with one file name but
    different folders cannot share the volume)."""
    files: dict[str, str] = {}
    for spec in config.models:
        if spec.model.startswith(EMBEDDED):
            continue
        name = PurePosixPath(spec.model).name
        if files.setdefault(name, spec.model) != spec.model:
            raise LauncherError(f"two models named {name} in different folders ({files[name]}, {spec.model}): the "
                                f"pods read every model from one volume under {MODELS_DIR}; rename one")
    return files


def _model_entry(entry: dict) -> None:
    model = entry.get("model")
    if isinstance(model, str) and not model.startswith(EMBEDDED):
        entry["model"] = f"{MODELS_DIR}/{PurePosixPath(model).name}"
    devices = entry.get("devices")
    if isinstance(devices, dict):
        devices.pop("ids", None)
    parallel = entry.get("parallel")
    if isinstance(parallel, dict):
        for key in ("hostfile", "rpc_host", "mpirun", "mpirun_args"):
            parallel.pop(key, None)
        if isinstance(parallel.get("hccl"), dict):
            parallel["hccl"].pop("if_ip", None)


def pod_config(data: dict, config: Config, source: str) -> str:
    """The YAML the ConfigMap holds. `data` is the user's file as read (variables expanded)."""
    out = copy.deepcopy(data)
    _model_entry(out)
    for entry in out.get("models") or ():
        if isinstance(entry, dict):
            _model_entry(entry)
    out["hostname"] = "0.0.0.0"       # top-level names win over gateway.host / gateway.port
    out["port"] = config.gateway.port
    header = (f"# {source} as the pods read it (launch export k8s): models under {MODELS_DIR}, the gateway on\n"
              "# every address of the pod, devices as the device plugin gives them.\n")
    return header + yaml.safe_dump(out, sort_keys=False, allow_unicode=True)
