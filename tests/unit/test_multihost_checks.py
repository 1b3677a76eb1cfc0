"""Jobs across hosts: hostfile slots vs ranks, each host's devices, RPC ports, and the HCCL settings."""
import itertools
import json

import pytest

from launcher.config.hostfile import parse_hostfile
from launcher.devices import parse_hccn_ip
from launcher.errors import ConfigError, PlanError
from launcher.plan import Host, make_plan
from launcher.plan.hccl import rank_table
from launcher.validate import load_source
from tests.unit.test_plan_golden import BINARIES

EP = "model: /m.gguf\nengine: {flavor: ascend-fork}\ndevices: {backend: cann, ids: [0, 1, 2, 3]}\n"


def problems(tmp_path, text, hosts=None):
    if hosts is not None:
        (tmp_path / "hosts").write_text(hosts)
    path = tmp_path / "c.yaml"
    path.write_text(text)
    try:
        load_source(text, str(path), offline=True)
    except ConfigError as exc:
        return [p.format() for p in exc.problems if not p.warning]
    return []


def test_hostfile_parsing_and_rank_placement():
    hf = parse_hostfile("# two hosts\nnode1 slots=2\nnode2 slots=2 max_slots=4  # comment\n\nnode1\n")
    assert hf.hosts == ("node1", "node2") and hf.total_slots == 5
    assert hf.rank_hosts(5) == ["node1", "node1", "node1", "node2", "node2"]
    assert hf.ranks_on("node2", 5) == [3, 4]
    bad = parse_hostfile("node1 slots=two\nnode2 cpus=4\n")
    assert len(bad.errors) == 2 and "line 1" in bad.errors[0] and "cpus" in bad.errors[1]


def test_fewer_slots_than_ranks_is_an_error_unless_oversubscribed(tmp_path):
    text = EP + "parallel: {mode: ep_tp, ranks: 4, tp_size: 4, ep_size: 4, hostfile: hosts}\n"
    found = problems(tmp_path, text, "a slots=2\nb slots=1\n")
    assert any("3 slot(s) for 4 ranks" in p for p in found), found
    over = text.replace("hostfile: hosts}", "hostfile: hosts, mpirun_args: [--oversubscribe]}")
    assert not any("slot(s)" in p for p in problems(tmp_path, over, "a slots=2\nb slots=1\n"))


def test_a_host_with_more_ranks_than_devices_is_named(tmp_path):
    text = EP.replace("[0, 1, 2, 3]", "[0, 1]") + \
        "parallel: {mode: ep_tp, ranks: 4, tp_size: 4, ep_size: 4, hostfile: hosts}\n"
    found = problems(tmp_path, text, "a slots=3\nb slots=1\n")
    assert any("host a runs 3 rank(s) (ranks 0-2)" in p and "lists 2 per host" in p for p in found), found
    assert not any("host b" in p for p in found)


def test_rpc_ports_past_65535_and_the_gateway_port(tmp_path):
    text = "model: /m.gguf\nparallel: {mode: rpc, ranks: 3, hostfile: hosts, rpc_port: 65535}\n"
    assert any("past 65535" in p for p in problems(tmp_path, text, "a slots=3\n"))
    text = ("model: /m.gguf\ngateway: {port: 50053}\n"
            "parallel: {mode: rpc, ranks: 3, hostfile: hosts, rpc_port: 50052}\n")
    assert any("gateway's port 50053 is among the RPC ports 50052-50053" in p
               for p in problems(tmp_path, text, "a slots=3\n"))
    top_level = text.replace("gateway: {port: 50053}", "port: 50053")   # the Llama Switch name for it
    assert any("gateway's port 50053 is among the RPC ports 50052-50053" in p
               for p in problems(tmp_path, top_level, "a slots=3\n"))


def test_hccl_is_for_ep_tp_on_cann_only(tmp_path):
    text = "model: /m.gguf\nparallel: {mode: rpc, ranks: 2, hccl: {connect_timeout: 600}}\n"
    assert any("used only by mode ep_tp on cann" in p for p in problems(tmp_path, text))


@pytest.mark.parametrize("hccl, message", [
    ("{connect_timeout: 60}", "must be >= 120"),
    ("{exec_timeout: -1}", "must be >= 0"),
    ("{if_ip: 10.0.0.300}", "is not an ipv4 address"),
    ("{device_ips: [10.0.0.1, 10.0.0.1, 10.0.0.3, 10.0.0.4]}", "device addresses repeat: 10.0.0.1"),
    ("{device_ips: [10.0.0.1, 10.0.0.2]}", "2 device address(es) for 4 devices"),
    ("{device_ips: {a: [10.0.0.1]}}", "device_ips per host needs parallel.hostfile"),
    ("{buffsize: 0}", "must be >= 1"),
])
def test_hccl_values_are_validated(tmp_path, hccl, message):
    text = EP + f"parallel: {{mode: ep_tp, ranks: 4, tp_size: 4, ep_size: 4, hccl: {hccl}}}\n"
    found = problems(tmp_path, text)
    assert any(message in p for p in found), found


def test_hccl_across_hosts_needs_ip_hosts_and_addresses_for_each(tmp_path):
    text = EP + ("parallel: {mode: ep_tp, ranks: 8, tp_size: 8, ep_size: 8, hostfile: hosts, hccl: {device_ips: "
                 "{10.0.0.1: [192.168.1.1, 192.168.1.2, 192.168.1.3, 192.168.1.4], 10.0.0.9: [192.168.2.1]}}}\n")
    found = problems(tmp_path, text, "10.0.0.1 slots=4\nnode-b slots=4\n")
    assert any("names each server by its IP address" in p and "node-b" in p for p in found), found
    assert any("no device addresses for host node-b" in p for p in found)
    assert any("host 10.0.0.9 is not in the hostfile" in p for p in found)
    short = text.replace("node-b", "10.0.0.2").replace("10.0.0.9: [192.168.2.1]", "10.0.0.2: [192.168.2.1]")
    found = problems(tmp_path, short, "10.0.0.1 slots=4\n10.0.0.2 slots=4\n")
    assert any("host 10.0.0.2 runs 4 rank(s), one per NPU, but has 1 device address(es)" in p for p in found), found


def test_rank_table_numbers_ranks_across_servers():
    table = json.loads(rank_table([("10.0.0.1", [(0, "192.168.1.1"), (1, "192.168.1.2")]),
                                   ("10.0.0.2", [(0, "192.168.2.1")])]))
    assert table["version"] == "1.0" and table["server_count"] == "2" and table["status"] == "completed"
    assert [d["rank_id"] for s in table["server_list"] for d in s["device"]] == ["0", "1", "2"]
    assert table["server_list"][1]["device"][0] == {"device_id": "0", "device_ip": "192.168.2.1", "rank_id": "2"}


def test_hccn_tool_output():
    assert parse_hccn_ip("ipaddr:192.168.100.101\nnetmask:255.255.255.0\n") == "192.168.100.101"
    assert parse_hccn_ip("") is None


def test_rank_table_needs_addresses_from_config_or_hccn_tool():
    text = EP + "parallel: {mode: ep_tp, ranks: 4, tp_size: 4, ep_size: 4, hccl: {connect_timeout: 600}}\n"
    cfg = load_source(text, "x.yaml", offline=True).config
    with pytest.raises(PlanError, match="needs an address for each of 4 NPU"):
        make_plan(cfg, None, BINARIES, itertools.count(30001), Host())
    read = Host(device_ips=((0, "192.168.1.1"), (1, "192.168.1.2"), (2, "192.168.1.3"), (3, "192.168.1.4")))
    plan = make_plan(cfg, None, BINARIES, itertools.count(30001), read)
    table = json.loads(plan.models[0].file("rank-table").content)
    assert [d["device_ip"] for d in table["server_list"][0]["device"]][-1] == "192.168.1.4"
    assert ("RANK_TABLE_FILE", plan.models[0].file("rank-table").path) in plan.models[0].job.exported


def test_addresses_read_on_this_host_go_to_their_own_devices():
    text = EP.replace("[0, 1, 2, 3]", "[2, 3]") + \
        "parallel: {mode: ep_tp, ranks: 2, tp_size: 2, ep_size: 2, hccl: {connect_timeout: 600}}\n"
    cfg = load_source(text, "x.yaml", offline=True).config
    # read for every HCCL model of the config: devices 0-3, of which this model has 2 and 3
    read = Host(device_ips=tuple((i, f"192.168.1.{i + 10}") for i in range(4)))
    table = json.loads(make_plan(cfg, None, BINARIES, itertools.count(30001), read).models[0].file("rank-table").content)
    assert [(d["device_id"], d["device_ip"]) for d in table["server_list"][0]["device"]] == \
        [("2", "192.168.1.12"), ("3", "192.168.1.13")]
