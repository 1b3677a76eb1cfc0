"""`launch export k8s | containerfile`: what a cluster runs, from one config. A config with problems exports
nothing and exits 2, as `launch validate` reports it."""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

from ..config.source import load_file
from ..errors import ConfigError, LauncherError
from ..export.containerfile import containerfile
from ..export.k8s import export_k8s
from ..export.pieces import ExportOptions
from ..export.pod_config import pod_config
from ..validate import from_anyserve, is_anyserve, load_config, load_source
from .config_commands import report_config_error


def register(sub) -> None:
    e = sub.add_parser("export", help="Kubernetes objects or a Containerfile for a config")
    kinds = e.add_subparsers(dest="export_kind", required=True)
    k = kinds.add_parser("k8s", help="Deployment / LeaderWorkerSet / AscendJob (or MPIJob), Service, ConfigMap")
    k.add_argument("--config", dest="config_opt", required=True)
    k.add_argument("--image", help="the image (default launcher:<backend>, as launch export containerfile tags it)")
    k.add_argument("--namespace")
    k.add_argument("--npu-resource", default="huawei.com/Ascend910",
                   help="the device plugin's NPU resource (huawei.com/ascend-1980, huawei.com/Ascend310P, ...)")
    k.add_argument("--name", help="objects' name (default: from the config file's name)")
    k.add_argument("--model-volume", default="pvc", metavar="pvc|hostpath:DIR",
                   help="where the pods read model files: a PersistentVolumeClaim (default) or a node folder")
    k.add_argument("--storage", help="the claim's size (default: the model files' size plus 20%%)")
    k.add_argument("--storage-class")
    k.add_argument("--format", choices=["auto", "mpijob"], default="auto",
                   help="ep_tp: an AscendJob (MindCluster, default) or a Kubeflow MPIJob")
    k.add_argument("--devices", type=int, help="devices per pod, when the config lists no devices.ids")
    k.add_argument("--npus-per-node", type=int, default=8)
    k.add_argument("-o", "--output", help="a folder: one file per object (default: every object on stdout)")
    k.set_defaults(func=export_k8s_command)

    c = kinds.add_parser("containerfile", help="the image the manifests name, llama.cpp built inside")
    c.add_argument("--backend", choices=["cann", "cuda", "cpu"])
    c.add_argument("--config", dest="config_opt", help="build llama.cpp as this config asks (same cache key)")
    c.add_argument("-o", "--output", help="file to write (default: stdout)")
    c.set_defaults(func=export_containerfile)


def load_for_export(path: str | Path):
    """(typed config, the pods' config text); a config with problems stops here (exit 2)."""
    result = load_config(path, offline=True)
    for w in result.warnings:
        print(w.format(), file=sys.stderr)
    src = load_file(path)   # read again: validation writes the machine's decisions into what it reads
    data = (from_anyserve(src) if is_anyserve(src) else src).data
    text = pod_config(data, result.config, Path(path).name)
    try:   # what the pods read must itself be a valid config
        load_source(text, f"{Path(path).name} (as the pods read it)", offline=True)
    except ConfigError as exc:
        report_config_error(exc)
        raise LauncherError("the exported config would not load in the pods (a launcher bug: please report it)")
    return result.config, text


def _options(args) -> ExportOptions:
    volume, _, host_path = args.model_volume.partition(":")
    if volume not in ("pvc", "hostpath") or (volume == "hostpath") != bool(host_path):
        raise LauncherError(f"--model-volume {args.model_volume}: give pvc, or hostpath:/folder/on/the/nodes")
    return ExportOptions(args.image, args.namespace, args.npu_resource, args.name, volume, host_path or None,
                         args.storage, args.storage_class, args.format, args.devices, args.npus_per_node)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the ConfigMap's config file) as literal blocks, readable in the manifest."""


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)
_Dumper.ignore_aliases = lambda self, data: True   # each object written out whole: no &id001 anchors


def dump(obj: dict) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)


def render(objects: list[dict]) -> str:
    return "---\n".join(dump(o) for o in objects)


def export_k8s_command(args) -> int:
    try:
        config, text = load_for_export(args.config_opt)
    except ConfigError as exc:
        report_config_error(exc, args.config_opt)
        return 2
    objects = export_k8s(config, text, _options(args))
    if not args.output:
        sys.stdout.write(render(objects))
        return 0
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    for n, obj in enumerate(objects, 1):
        path = out / f"{n:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
        path.write_text(dump(obj))
        print(path)
    return 0


def export_containerfile(args) -> int:
    text = None
    backend = args.backend
    if args.config_opt:
        try:
            config, text = load_for_export(args.config_opt)
        except ConfigError as exc:
            report_config_error(exc, args.config_opt)
            return 2
        backend = backend or (config.build.backend or (config.models[0].devices.backend if config.models else "cpu"))
    result = containerfile(backend or "cpu", text)
    if args.output:
        Path(args.output).write_text(result)
        print(args.output)
    else:
        sys.stdout.write(result)
    return 0
