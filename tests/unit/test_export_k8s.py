"""Tier 1: `launch export k8s` and `launch export containerfile`. Golden manifests for every shipped config;
every object validated: the core kinds against Kubernetes' published schemas (kubernetes-validate, one pinned
version, strict), LeaderWorkerSet, MPIJob and AscendJob against their CRDs' openAPIV3Schema (tests/fixtures/crds,
with their source), the pod templates inside them as core PodTemplates. A broken config exports nothing."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from launcher.cli.export_commands import load_for_export, render
from launcher.errors import LauncherError
from launcher.export.containerfile import containerfile
from launcher.export.k8s import export_k8s
from launcher.export.pieces import ExportOptions
from launcher.validate import load_source

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "k8s"
CRDS = ROOT / "tests" / "fixtures" / "crds"
KUBERNETES = "1.33.0"      # the one Kubernetes version the manifests are checked against
SHIPPED = sorted(p.stem for p in (ROOT / "configs").glob("*.yaml"))
CASES = [(name, "auto") for name in SHIPPED] + [("config_deepseek_v2_lite_ep", "mpijob")]


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch):
    for name in ("LAUNCHER_PORT", "ASCEND_LLAMA_BIN"):   # the shipped configs' ${VAR:-default}: the defaults
        monkeypatch.delenv(name, raising=False)


def exported(path: Path, **opts) -> list[dict]:
    return export_k8s(*load_for_export(path), ExportOptions(**opts))


# --- the validators -------------------------------------------------------------------------------------
def _closed(schema):
    """The schema as the API server's pruning treats objects: no field it does not know."""
    if isinstance(schema, dict):
        schema = {k: _closed(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema


def _pod_specs(schema: dict, value, found: list) -> None:
    """Every value that sits where the CRD embeds a core PodSpec."""
    if schema.get("x-launcher-pod-spec"):
        found.append(value)
        return
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        if key in schema.get("properties", {}):
            _pod_specs(schema["properties"][key], item, found)
        elif isinstance(schema.get("additionalProperties"), dict):
            _pod_specs(schema["additionalProperties"], item, found)


def check_core(obj: dict) -> None:
    import kubernetes_validate
    kubernetes_validate.validate(obj, KUBERNETES, strict=True)


def check_crd(obj: dict) -> None:
    crds = {(c["group"] + "/" + c["version"], c["kind"]): c for c in
            (yaml.safe_load(p.read_text()) for p in CRDS.glob("*.yaml"))}
    crd = crds[(obj["apiVersion"], obj["kind"])]
    schema = crd["openAPIV3Schema"]
    opened = _closed(copy.deepcopy(schema))
    for node in _walk(opened):   # the pod specs are checked below, as core objects
        if node.get("x-launcher-pod-spec"):
            node.pop("additionalProperties", None)
            node.pop("properties", None)
    jsonschema.validate(obj, opened)
    specs: list = []
    _pod_specs(schema, obj, specs)
    assert specs, "no pod template found"
    for spec in specs:
        check_core({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"},
                    "template": {"spec": spec}})


def _walk(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def check(obj: dict) -> None:
    (check_core if "/" not in obj["apiVersion"] or obj["apiVersion"].startswith("apps/") else check_crd)(obj)


# --- golden manifests, validated ------------------------------------------------------------------------
@pytest.mark.parametrize("name,fmt", CASES)
def test_every_shipped_config_exports_valid_manifests_equal_to_golden(name, fmt):
    objects = exported(ROOT / "configs" / f"{name}.yaml", format=fmt)
    text = render(objects)
    golden = GOLDEN / f"{name}{'.mpijob' if fmt == 'mpijob' else ''}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden}; run with UPDATE_GOLDEN=1"
    assert text == golden.read_text()
    for obj in objects:
        check(obj)
    assert "ASCEND_RT_VISIBLE_DEVICES" not in text and "127.0.0.1" not in text   # no host's devices or loopback


def test_the_validators_refuse_what_the_api_server_would():
    import kubernetes_validate
    [lws] = [o for o in exported(ROOT / "configs" / "config_rpc_2ranks.yaml") if o["kind"] == "LeaderWorkerSet"]
    for path, value in ((("spec", "leaderWorkerTemplate", "restartPolicy"), "Always"),           # not an enum value
                        (("spec", "leaderWorkerTemplate", "sizee"), 2),                           # unknown field
                        (("spec", "leaderWorkerTemplate", "workerTemplate", "spec", "containers"), "x")):  # core type
        broken = copy.deepcopy(lws)
        node = broken
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        with pytest.raises((jsonschema.ValidationError, kubernetes_validate.ValidationError)):
            check(broken)
    [deployment] = [o for o in exported(ROOT / "configs" / "config_gemma3_270m_cpu.yaml") if o["kind"] == "Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        check(deployment)


# --- what the objects say -------------------------------------------------------------------------------
def by_kind(objects: list[dict]) -> dict[str, dict]:
    return {o["kind"]: o for o in objects}


def test_one_host_asks_for_the_npus_the_plan_needs_and_waits_as_long_as_loading_may_take(tmp_path):
    cfg = tmp_path / "layer.yaml"
    cfg.write_text("model: /srv/m/qwen2-7b.gguf\nmodel_alias: qwen\ndevices: {backend: cann, ids: [4, 5]}\n"
                   "parallel: {mode: layer}\ngateway: {grpc_port: 9000, load_timeout: 900, drain_timeout: 60,\n"
                   "  admin_key_env: ADMIN, keys: [{name: team, key_env: TEAM_KEY}]}\n")
    objects = by_kind(exported(cfg, npu_resource="huawei.com/ascend-1980", namespace="llm", image="reg/launcher:cann",
                               model_volume="hostpath", host_path="/data/models"))
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    [c] = pod["containers"]
    assert c["resources"] == {"requests": {"huawei.com/ascend-1980": 2}, "limits": {"huawei.com/ascend-1980": 2}}
    assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] >= 900
    assert pod["terminationGracePeriodSeconds"] > 60
    assert [p["containerPort"] for p in c["ports"]] == [8080, 9000] and c["image"] == "reg/launcher:cann"
    assert {v["name"]: v["valueFrom"]["secretKeyRef"]["key"] for v in c["env"]} == {"ADMIN": "ADMIN",
                                                                                   "TEAM_KEY": "TEAM_KEY"}
    assert {"name": "models", "hostPath": {"path": "/data/models", "type": "Directory"}} in pod["volumes"]
    assert "PersistentVolumeClaim" not in objects and objects["Service"]["metadata"]["namespace"] == "llm"
    text = objects["ConfigMap"]["data"]["config.yaml"]
    pod_cfg = yaml.safe_load(text)
    assert pod_cfg["model"] == "/models/qwen2-7b.gguf" and "ids" not in pod_cfg["devices"]
    assert pod_cfg["hostname"] == "0.0.0.0"
    for obj in objects.values():
        check(obj)


def test_a_layer_split_without_device_ids_needs_a_count(tmp_path):
    cfg = tmp_path / "open.yaml"
    cfg.write_text("model: /srv/m/x.gguf\ndevices: {backend: cann}\nparallel: {mode: layer}\n")
    with pytest.raises(LauncherError, match="--devices N"):
        exported(cfg)
    assert by_kind(exported(cfg, devices=4))["Deployment"]["spec"]["template"]["spec"]["containers"][0][
        "resources"]["limits"] == {"huawei.com/Ascend910": 4}


def test_a_broken_config_exports_nothing_and_exits_2(tmp_path):
    cfg = tmp_path / "broken.yaml"
    cfg.write_text("model: /srv/m/x.gguf\nn_ctx: -5\nparallel: {mode: sideways}\n")
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "launcher", "export", "k8s", "--config", str(cfg), "-o", str(out)],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2 and not out.exists() and res.stdout == ""
    assert "n_ctx" in res.stderr and "sideways" in res.stderr and "broken.yaml:2" in res.stderr


def test_the_cli_writes_one_file_per_object(tmp_path):
    res = subprocess.run([sys.executable, "-m", "launcher", "export", "k8s", "--config",
                          "configs/config_rpc_2ranks.yaml", "-o", str(tmp_path)], capture_output=True, text=True,
                         cwd=ROOT, env={k: v for k, v in os.environ.items() if k != "LAUNCHER_PORT"})
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01-configmap-rpc-2ranks-config.yaml",
                                                          "02-leaderworkerset-rpc-2ranks.yaml",
                                                          "03-service-rpc-2ranks.yaml"]


def test_the_image_builds_llama_cpp_under_the_key_the_pods_look_up():
    from launcher.toolchain import _key, request_for
    config, text = load_for_export(ROOT / "configs" / "config_deepseek_v2_lite_ep.yaml")
    file = containerfile("cann", text)
    assert "launch build --config /opt/launcher/build-config.yaml" in file and text.strip() in file
    assert "source /usr/local/Ascend/ascend-toolkit/set_env.sh" in file and "ARG BASE_IMAGE=" in file
    in_pod = load_source(text, "pod.yaml", offline=True).config
    here, there = request_for(config, download=False), request_for(in_pod, download=False)
    if here is None:
        pytest.skip("the pinned llama.cpp source is not cached here (make build fetches it)")
    assert _key(here) == _key(there)
    assert "--portable" in containerfile("cpu", None) and "nvidia/cuda" in containerfile("cuda", None)
