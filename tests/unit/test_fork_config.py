"""Tier 1: the YAML launcher writes for the Ascend fork (`llama-server --config X`, `llama-mpi-server --config X`)
holds the guide's keys, with the guide's types; and the shipped Ascend configs are readable by the fork itself:
their top-level keys are the guide's, with plain values (no `${VAR:-default}` where the fork would read it)."""
import itertools
import re
from pathlib import Path

import pytest
import yaml

from launcher.devices import parse_assumed
from launcher.engines.llama_server import EP_TP_SIZES
from launcher.plan import make_plan
from launcher.validate import load_config
from tests.unit.test_plan_golden import BINARIES, HOST

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "tests" / "reference_examples" / "ascend_guide_params.md"
DOCUMENT = ROOT.parent / "shared" / "reference" / "002_a88fb7ad9a6e7a44.txt"
TYPES = {"int": int, "bool": bool, "string": str, "array": list, "float": (float, int)}
FORK_CONFIGS = ["config_deepseek_v2_lite", "config_deepseek_v2", "config_deepseek_v2_lite_ep"]
LAUNCHER_SECTIONS = {"devices", "parallel", "engine", "build", "gateway", "defaults", "models", "workers"}


def guide_keys() -> dict[str, str]:
    """The guide's parameter table (主要配置参数): key -> type."""
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \|", TABLE.read_text(encoding="utf-8"), re.MULTILINE)
    return dict(rows)


def test_the_table_copy_is_the_guides():
    if not DOCUMENT.exists():
        pytest.skip("the reference documents are not beside this checkout")
    assert TABLE.read_text(encoding="utf-8") in DOCUMENT.read_text(encoding="utf-8")
    assert len(guide_keys()) == 29


def fork_yaml(name: str) -> tuple[dict, str]:
    config = load_config(ROOT / "configs" / f"{name}.yaml", offline=True, assume=parse_assumed("cann:8"),
                         env={"ASCEND_LLAMA_BIN": "/opt/llama-ascend/bin"}).config
    plan = make_plan(config, parse_assumed("cann:8"), BINARIES, itertools.count(30001), HOST)
    (f,) = [f for f in plan.models[0].files if f.kind == "fork-config"]
    return yaml.safe_load(f.content), config.models[0].parallel.mode


@pytest.mark.parametrize("name", FORK_CONFIGS)
def test_the_yaml_written_for_the_fork_holds_the_guides_keys_with_their_types(name):
    table = guide_keys()
    data, mode = fork_yaml(name)
    extra = set(EP_TP_SIZES) if mode == "ep_tp" else set()  # the EP/TP split, which only llama-mpi-server reads
    assert set(data) <= set(table) | extra, set(data) - set(table) - extra
    for key, value in data.items():
        if key in table:
            assert isinstance(value, TYPES[table[key]]), (key, value, table[key])
    assert data["hostname"] == "127.0.0.1" and isinstance(data["port"], int)  # the engine's internal port


@pytest.mark.parametrize("name", FORK_CONFIGS)
def test_a_shipped_ascend_config_is_readable_by_the_fork_itself(name):
    table = guide_keys()
    data = yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text())
    read_by_fork = {k: v for k, v in data.items() if k not in LAUNCHER_SECTIONS}
    assert set(read_by_fork) <= set(table), set(read_by_fork) - set(table)
    for key, value in read_by_fork.items():
        assert "${" not in str(value), f"{key}: {value} (the fork does not expand variables)"
        assert isinstance(value, TYPES[table[key]]), (key, value)
