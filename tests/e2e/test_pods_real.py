"""Tier 2: the pods of `launch export k8s` run for real. Each pod is its manifest's container command, started
as a process in a network namespace of its own with exactly the environment the image and the operator give
it, its ConfigMap mounted where the manifest mounts it.

- Deployment (configs/config_gemma3_270m_cpu.yaml): the pod serves, and answers the probes' paths.
- LeaderWorkerSet (configs/config_rpc_2ranks.yaml): the leader and the worker in two namespaces joined by a
  link, the worker's cluster name resolved as the group's headless Service would; the openai SDK gets an
  answer through the leader, and the model's weights crossed the link to the worker's rpc-server.
- AscendJob (configs/config_deepseek_v2_lite_ep.yaml) on the simulated Ascend host: the pod waits while the
  rank table says `initializing`, starts the ranks once ascend-operator flips it to `completed`, and the
  ranks read that table as it is."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import yaml

from launcher.paths import cache_dir
from launcher.testing.launched import wait_for
from tests.e2e.clients import CHAT as CLIENT
from tests.e2e.netns import network_namespace, rx_bytes, two_hosts
from tests.e2e.pods import hosts_file, image_env, mount_points, start_pod, stop_pod
from tests.fakes.ascend_host import ENGINE_DIR, AscendHost

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "default.svc.cluster.local"


def export(config: str, tmp_path: Path, *args: str, **env_vars: str) -> dict[str, dict]:
    env = {k: v for k, v in os.environ.items() if k not in ("LAUNCHER_PORT", "ASCEND_LLAMA_BIN")} | env_vars
    out = subprocess.run([sys.executable, "-m", "launcher", "export", "k8s", "--config", config, *args],
                         capture_output=True, text=True, cwd=ROOT, env=env, check=True).stdout
    return {o["kind"] + ("/" + o["metadata"]["name"] if o["kind"] == "ConfigMap" else ""): o
            for o in yaml.safe_load_all(out)}


def config_folder(objects: dict, name: str, tmp_path: Path) -> Path:
    folder = tmp_path / "configmap"
    folder.mkdir()
    (folder / "config.yaml").write_text(objects[f"ConfigMap/{name}-config"]["data"]["config.yaml"])
    return folder


def test_the_deployments_pod_serves_and_answers_its_probes(tmp_path, built, gemma):
    objects = export("configs/config_gemma3_270m_cpu.yaml", tmp_path)
    [c] = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    folder = config_folder(objects, "gemma3-270m-cpu", tmp_path)
    with two_hosts("deploy") as hosts, mount_points("/etc/launcher"):
        pod = start_pod(hosts.namespaces[0], "gemma3-270m-cpu-5d8f7-x2x", {"/etc/launcher": folder},
                        image_env(cache_dir()) | {"HOSTNAME": "gemma3-270m-cpu-5d8f7-x2x"}, c["command"],
                        tmp_path / "pod.log")
        url = f"http://{hosts.reachable}:{c['ports'][0]['containerPort']}"
        try:
            probe = lambda name: httpx.get(url + c[name]["httpGet"]["path"], timeout=2).status_code  # noqa: E731

            def ready() -> bool:
                assert pod.poll() is None, (tmp_path / "pod.log").read_text()[-3000:]
                try:
                    return probe("readinessProbe") == 200
                except httpx.HTTPError:
                    return False
            assert wait_for(ready, 180, 0.5), (tmp_path / "pod.log").read_text()[-3000:]
            assert probe("startupProbe") == 200 and probe("livenessProbe") == 200
            client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=120)
            reply = client.chat.completions.create(model="gemma3-270m", max_tokens=8, temperature=0,
                                                   messages=[{"role": "user", "content": "Say hello."}])
            assert reply.choices[0].message.content.strip()
        finally:
            stop_pod(pod)
        assert pod.returncode == 0, (tmp_path / "pod.log").read_text()[-3000:]   # SIGTERM: drained, exit 0


def test_a_leader_worker_set_group_serves_gemma_over_rpc(tmp_path, built, gemma):
    objects = export("configs/config_rpc_2ranks.yaml", tmp_path)
    lws = objects["LeaderWorkerSet"]
    template = lws["spec"]["leaderWorkerTemplate"]
    leader_c = template["leaderTemplate"]["spec"]["containers"][0]
    worker_c = template["workerTemplate"]["spec"]["containers"][0]
    port = leader_c["ports"][0]["containerPort"]
    folder = config_folder(objects, "rpc-2ranks", tmp_path)
    set_name, size = lws["metadata"]["name"], template["size"]
    leader_name, worker_name = f"{set_name}-0", f"{set_name}-0-1"
    injected = {"LWS_LEADER_ADDRESS": f"{leader_name}.{set_name}.{NAMESPACE}", "LWS_GROUP_SIZE": str(size)}
    with two_hosts("lws") as hosts, mount_points("/etc/launcher"):
        names = {f"{leader_name}.{set_name}.{NAMESPACE}": hosts.addresses[0],
                 f"{worker_name}.{set_name}.{NAMESPACE}": hosts.addresses[1]}
        with hosts_file(hosts.namespaces[0], names), hosts_file(hosts.namespaces[1], names):
            before = rx_bytes(hosts.namespaces[1], hosts.links[1])
            mounts = {"/etc/launcher": folder}
            worker = start_pod(hosts.namespaces[1], worker_name, mounts,
                               image_env(cache_dir()) | injected | {"LWS_WORKER_INDEX": "1", "HOSTNAME": worker_name},
                               worker_c["command"], tmp_path / "worker.log")
            leader = start_pod(hosts.namespaces[0], leader_name, mounts,
                               image_env(cache_dir()) | injected | {"LWS_WORKER_INDEX": "0", "HOSTNAME": leader_name},
                               leader_c["command"], tmp_path / "leader.log")
            url = f"http://{hosts.reachable}:{port}"
            try:
                def ready() -> bool:
                    assert leader.poll() is None, (tmp_path / "leader.log").read_text()[-3000:]
                    try:
                        return httpx.get(url + "/ready", timeout=2).status_code == 200
                    except httpx.HTTPError:
                        return False
                assert wait_for(ready, 300, 0.5), (tmp_path / "leader.log").read_text()[-3000:]
                client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=120)
                reply = client.chat.completions.create(model="gemma3-270m-rpc", max_tokens=12, temperature=0,
                                                       messages=[{"role": "user", "content": "Say hello."}])
                assert reply.choices[0].message.content.strip()
                leader_log, worker_log = (tmp_path / "leader.log").read_text(), (tmp_path / "worker.log").read_text()
                assert f"--rpc {hosts.addresses[1]}:{worker_c['ports'][0]['containerPort']}" in leader_log
                assert "--host 0.0.0.0 --port 50052" in worker_log, worker_log[-2000:]
                # the weights (235 MiB) went over the link to the worker pod's rpc-server
                assert rx_bytes(hosts.namespaces[1], hosts.links[1]) - before > 200 * 2**20
            finally:
                stop_pod(leader)
                stop_pod(worker)
            assert leader.returncode == 0, (tmp_path / "leader.log").read_text()[-3000:]


def test_an_ascend_job_pod_waits_for_the_operators_rank_table(tmp_path, built):
    # exported where the fork's programs are in the image (here: the simulated host's stand-ins)
    objects = export("configs/config_deepseek_v2_lite_ep.yaml", tmp_path, ASCEND_LLAMA_BIN=ENGINE_DIR)
    job = objects["AscendJob"]
    container = job["spec"]["replicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    table_path = Path(next(e["value"] for e in container["env"] if e["name"] == "RANK_TABLE_FILE"))
    mounted = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    host = AscendHost(tmp_path / "host", given=(4, 5))    # the node's NPUs 4 and 5, as the pod sees them
    host.model("DeepSeek-V2-Lite-Chat-Q8_0.gguf")
    folder = config_folder(objects, "deepseek-v2-lite-ep", tmp_path)
    ranktable = tmp_path / "ranktable"
    ranktable.mkdir()
    (ranktable / "hccl.json").write_text(objects["ConfigMap/rings-config-deepseek-v2-lite-ep"]["data"]["hccl.json"])
    completed = {"version": "1.0", "server_count": "1", "status": "completed", "server_list": [
        {"server_id": "10.0.0.5", "host_ip": "10.0.0.5", "device": [
            {"device_id": "4", "device_ip": "192.168.1.14", "rank_id": "0"},
            {"device_id": "5", "device_ip": "192.168.1.15", "rank_id": "1"}]}]}
    # exactly: the image's ENV (launch on PATH, its build cache; CANN's variables come from the toolkit's
    # set_env.sh, as the image sets them), the simulated host's stand-in recorder, what the manifest sets and
    # what ascend-operator injects (its PyTorch names)
    env = host.env()
    pod_env = image_env(cache_dir()) | {k: env[k] for k in ("PATH", "STANDIN_RECORD", "STANDIN_HELP",
                                                            "OMPI_ALLOW_RUN_AS_ROOT", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM")} | {
        "RANK_TABLE_FILE": str(table_path), "XDL_IP": "10.0.0.5", "ASCEND_VISIBLE_DEVICES": "4,5",
        "MASTER_ADDR": "10.0.0.5", "MASTER_PORT": "2222", "WORLD_SIZE": "2", "RANK": "0", "LOCAL_WORLD_SIZE": "2",
        "LOCAL_RANK": "0,1", "HOSTNAME": "deepseek-v2-lite-ep-master-0"}
    binds = {mounted["config"]: folder, mounted["models"]: host.srv / "models", mounted["ranktable"]: ranktable}
    inner = " && ".join(f"mount --bind {src} {dst}" for dst, src in binds.items()) + \
        " && exec " + " ".join(container["command"])
    with network_namespace("ascendjob") as ns, mount_points(*binds):
        pod = host.start(["sh", "-c", inner], ns, pod_env, tmp_path / "pod.log")
        try:
            assert wait_for(lambda: "waiting for the rank table" in (tmp_path / "pod.log").read_text(), 60), \
                (tmp_path / "pod.log").read_text()[-3000:]
            time.sleep(2)
            assert pod.poll() is None and host.records() == []   # nothing starts while the table is initializing
            (ranktable / "hccl.json").write_text(json.dumps(completed))   # ascend-operator's update
            client = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", CLIENT,
                                     "http://127.0.0.1:8080", "deepseek-v2-lite"],
                                    capture_output=True, text=True, timeout=240, cwd=ROOT)
            assert client.returncode == 0, client.stderr[-2000:] + (tmp_path / "pod.log").read_text()[-3000:]
            assert json.loads(client.stdout)["content"]
        finally:
            stop_pod(pod, 60)
        ranks = sorted(host.records(), key=lambda r: r["rank"])
        assert [r["program"] for r in ranks] == ["llama-mpi-server", "llama-mpi-server"]
        for r in ranks:
            assert r["env"]["RANK_TABLE_FILE"] == str(table_path)      # the operator's table, as it is
            assert r["env"]["ASCEND_RT_VISIBLE_DEVICES"] == "0,1"      # the pod's two NPUs, numbered in the pod
            assert r["env"]["HCCL_CONNECT_TIMEOUT"] == "600"
