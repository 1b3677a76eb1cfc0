"""Tier 2: several models placed on the devices by the memory plan (issue 25), on the simulated Ascend host.

Two NPUs of 6 MiB HBM with 1 MiB in use already (`hbm_mib`), and three small DeepSeek-V2-architecture models
whose memory plans need a little over 4 MiB each on an NPU: one per NPU. `launch plan` places alpha on NPU 0,
beta on NPU 1 and gamma (on demand) on NPU 0, where it has to evict. Then `launch --config` serves them and
the openai SDK asks each in turn: each engine starts with the ASCEND_RT_VISIBLE_DEVICES the plan said, and
loads and evictions happen exactly as the plan predicts."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.e2e.clients import TURNS
from tests.e2e.netns import in_namespace, network_namespace
from tests.e2e.pods import stop_pod
from tests.fakes.ascend_host import ENGINE_DIR, AscendHost

ROOT = Path(__file__).resolve().parents[2]
CONFIG = f"""n_ctx: 4096
engine: {{flavor: ascend-fork, binary: {ENGINE_DIR}/llama-server}}
gateway: {{load_timeout: 60}}
models:
  - {{model: /srv/models/alpha.gguf, model_alias: alpha}}
  - {{model: /srv/models/beta.gguf, model_alias: beta}}
  - {{model: /srv/models/gamma.gguf, model_alias: gamma, preload: false}}
"""


def serve_turns(host: AscendHost, cfg: Path, *names: str) -> tuple[list[dict], dict, str]:
    """`launch --config cfg` on the host in a namespace of its own, each model asked in turn; (which models had
    an engine at the start and after each request, each model's bytes per device, launch's log)."""
    with network_namespace("several") as ns:
        proc = host.start([sys.executable, "-m", "launcher", "--config", str(cfg)], ns, host.env())
        try:
            res = subprocess.run(in_namespace(ns, [sys.executable, "-c", TURNS, "http://127.0.0.1:8080", *names]),
                                 capture_output=True, text=True, timeout=300, cwd=ROOT)
        finally:
            stop_pod(proc, 60)   # SIGTERM, then SIGKILL after the grace: nothing is left running
    log = (host.root / "launch.log").read_text(errors="replace")
    assert res.returncode == 0, res.stderr[-3000:] + log[-3000:]
    *turns, status = [json.loads(line) for line in res.stdout.splitlines()]
    return turns, status["bytes"], log


def test_three_models_load_and_evict_where_the_plan_placed_them(tmp_path, built):
    host = AscendHost(tmp_path / "host", given=(0, 1), hbm_mib=(1, 6))
    for name in ("alpha", "beta", "gamma"):
        host.model(f"{name}.gguf")
    cfg = tmp_path / "three.yaml"
    cfg.write_text(CONFIG)
    plan = host.run([sys.executable, "-m", "launcher", "plan", "--config", str(cfg)])
    assert plan.returncode == 0, plan.stderr[-3000:]
    table = [ln for ln in plan.stdout.splitlines() if ln.startswith("# ")]
    assert "# placement on 2 cann device(s) (what each model holds there, and its share of the device):" in table
    rows = {ln.split()[1]: ln for ln in table if ln.split()[1:2] and ln.split()[1] in ("alpha", "beta", "gamma")}
    assert rows["alpha"].split()[2:4] != ["-"] and rows["alpha"].split()[-1] == "-"   # NPU 0 only
    assert rows["beta"].split()[2] == "-" and rows["beta"].split()[-1].endswith("%")    # NPU 1 only
    assert rows["gamma"].split()[3:5] != ["-"] and "loading it evicts idle models" in plan.stdout
    assert any("in use already" in ln for ln in table)

    turns, held, log = serve_turns(host, cfg, "gamma", "alpha", "beta", "gamma")
    assert {m: list(b) for m, b in held.items()} == {"alpha": ["cann:0"], "beta": ["cann:1"],
                                                                 "gamma": ["cann:0"]}
    assert turns == [{"start": ["alpha", "beta"]},
                     {"gamma": ["beta", "gamma"]},     # gamma's NPU 0 held alpha: alpha went
                     {"alpha": ["alpha", "beta"]},     # and back: gamma went, beta on NPU 1 never moved
                     {"beta": ["alpha", "beta"]},
                     {"gamma": ["beta", "gamma"]}]
    starts = [(Path(r["config"]["model"]).stem, r["env"]["ASCEND_RT_VISIBLE_DEVICES"]) for r in host.records()]
    assert sorted(starts[:2]) == [("alpha", "0"), ("beta", "1")]
    assert starts[2:] == [("gamma", "0"), ("alpha", "0"), ("gamma", "0")]
    assert "unloading alpha to make room on its devices for gamma" in log


GEMMA = """n_ctx: 1024
n_parallel: 1
engine: {{binary: {server}}}
gateway: {{load_timeout: 120}}
models:
  - {{model: {gemma}, model_alias: g1}}
  - {{model: {gemma}, model_alias: g2}}
  - {{model: {gemma}, model_alias: g3, preload: false}}
"""


def test_real_gemma_served_by_each_of_three_names_in_turn_on_small_devices(tmp_path, built, gemma):
    """The same placement and evictions with real engines: launcher's CPU llama-server serves Gemma under
    three names, on a host whose two NPUs (simulated: 400 MiB each) hold one Gemma each."""
    host = AscendHost(tmp_path / "host", given=(0, 1), hbm_mib=(0, 400))
    cfg = tmp_path / "gemmas.yaml"
    cfg.write_text(GEMMA.format(server=built.binary("llama-server"), gemma=gemma))
    turns, held, _ = serve_turns(host, cfg, "g3", "g1", "g2")
    assert turns == [{"start": ["g1", "g2"]}, {"g3": ["g2", "g3"]}, {"g1": ["g1", "g2"]}, {"g2": ["g1", "g2"]}]
    # what /api/v1/model/status says each name holds where: one Gemma per 400 MiB NPU
    assert list(held["g1"]) == ["cann:0"] and list(held["g2"]) == ["cann:1"] and list(held["g3"]) == ["cann:0"]
    assert all(200 * 2**20 < b < 400 * 2**20 for m in held.values() for b in m.values())
