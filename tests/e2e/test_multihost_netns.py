"""The multi-host RPC path for real: two network namespaces as two hosts joined by a veth pair, one MPI
rank in each. mpirun (in the first) starts the second host's daemon through an ssh stand-in that enters
the other namespace, as ssh would log in to another machine; the hostfile names the two addresses.
Rank 0's llama-server offloads every layer to rank 1's ggml-rpc-server across the link."""
import stat

import openai

from launcher.net import free_ports
from launcher.testing.launched import Launched
from tests.e2e.conftest import ROOT
from tests.e2e.netns import rx_bytes, two_hosts

AGENT = """#!/bin/sh
# ssh stand-in for mpirun (PRRTE's plm_ssh_agent): "log in" to a host = enter the namespace owning its address,
# with a hostname of its own as a second machine would have.
host="$1"; shift
case "$host" in
{cases}
  *) echo "no such host: $host" >&2; exit 255 ;;
esac
exec ip netns exec "$ns" unshare --uts sh -c "hostname $ns; $*"
"""

CONFIG = """model: embedded:gemma3-270m
model_alias: gemma
n_ctx: 2048
n_parallel: 1
hostname: {gateway}
port: {port}
parallel:
  mode: rpc
  ranks: 2
  rpc_port: {rpc_port}
  hostfile: hosts
  mpirun_args: [--prtemca, plm_ssh_agent, {agent}]
engine: {{max_restarts: 0, exit_on_failure: true, start_timeout: 300}}
"""


def test_rpc_across_two_namespace_hosts_serves_with_weights_on_the_other_host(tmp_path, built, gemma):
    with two_hosts("rpc") as hosts:
        (tmp_path / "hosts").write_text("".join(f"{a} slots=1\n" for a in hosts.addresses))
        agent = tmp_path / "agent.sh"
        cases = "\n".join(f"  {a}) ns={ns} ;;" for a, ns in zip(hosts.addresses, hosts.namespaces))
        agent.write_text(AGENT.format(cases=cases))
        agent.chmod(agent.stat().st_mode | stat.S_IXUSR)
        port, rpc_port = next(free_ports()), next(free_ports())
        cfg = tmp_path / "rpc.yaml"
        cfg.write_text(CONFIG.format(gateway=hosts.reachable, port=port, rpc_port=rpc_port, agent=agent))
        before = rx_bytes(hosts.namespaces[1], hosts.links[1])
        run = Launched(["--config", str(cfg)], f"http://{hosts.reachable}:{port}", tmp_path / "launch.log",
                       None, str(ROOT), ("ip", "netns", "exec", hosts.namespaces[0]))
        try:
            run.wait_ready(timeout=300)
            client = openai.OpenAI(base_url=run.url + "/v1", api_key="x", max_retries=0, timeout=120)
            reply = client.chat.completions.create(model="gemma", max_tokens=16, temperature=0,
                                                   messages=[{"role": "user", "content": "Say hello."}])
            assert reply.choices[0].message.content.strip()
            log = run.log.read_text()
            # Rank 1 ran on the second "host" and bound its own address there; rank 0 reached it over the link.
            assert f"[rank 1] local rank 0 on {hosts.namespaces[1]}" in log, log[-3000:]
            assert f"--host {hosts.addresses[1]} --port {rpc_port}" in log
            assert f"--rpc {hosts.addresses[1]}:{rpc_port}" in log
            # The model's weights (235 MiB) crossed the veth link into the second host.
            assert rx_bytes(hosts.namespaces[1], hosts.links[1]) - before > 200 * 2**20
        finally:
            run.stop(timeout=30)
            left = run.leftovers()
            run.kill_leftovers()
        assert not left, f"processes outlived launch: {left}"
