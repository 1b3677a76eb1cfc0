"""Tier 1: every broken config is rejected with exit 2, its YAML path and line, and no traceback."""
import re
from pathlib import Path

import pytest

from launcher.config.model import EngineParams
from launcher.config.schema import engine_keys, schema
from launcher.errors import ConfigError
from launcher.validate import load_source

ROOT = Path(__file__).resolve().parents[2]
BROKEN = sorted((ROOT / "tests" / "broken_configs").glob("*.yaml"))
SHIPPED = sorted((ROOT / "configs").glob("*.yaml"))


def test_corpus_is_large_enough():
    assert len(BROKEN) >= 30


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_config_exits_2_with_path_line_and_hint(path, run_launch):
    expect = re.match(r"# expect: (\S+(?: level\))?) @ (\d+): (.+)", path.read_text().splitlines()[0])
    dotted, line, text = expect.group(1), int(expect.group(2)), expect.group(3)
    res = run_launch("validate", "--offline", str(path.relative_to(ROOT)),
                     env={"LAUNCHER_TEST_UNSET_VAR": ""})
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    matching = [ln for ln in res.stderr.splitlines()
                if f"{path.name}:{line}:" in ln and f": {dotted}: " in ln and text in ln]
    hint_lines = res.stderr.split("\n")
    if not matching:  # did-you-mean lives on the hint line under the problem
        for i, ln in enumerate(hint_lines[:-1]):
            if f"{path.name}:{line}:" in ln and f": {dotted}: " in ln and text in hint_lines[i + 1]:
                matching.append(ln)
    assert matching, f"expected {dotted} at line {line} with {text!r} in:\n{res.stderr}"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_config_validates_offline(path, run_launch):
    res = run_launch("validate", "--offline", str(path))
    assert res.returncode == 0, res.stderr


def test_all_errors_reported_at_once():
    text = "model: m.gguf\nn_ctxx: 1\nport: 0\nsplit_mode: rows\nparallel: {mode: rpc}\n"
    with pytest.raises(ConfigError) as err:
        load_source(text, "x.yaml", offline=True)
    paths = {p.dotted for p in err.value.problems}
    assert {"n_ctxx", "port", "split_mode", "parallel"} <= paths


def test_env_expansion_with_default_and_typed_result():
    r = load_source("model: ${D:-/m}/x.gguf\nport: ${P:-9000}\nmodel_alias: '${A:-7}'\n", "x.yaml",
                    offline=True, env={"D": "/models"})
    cfg = r.config
    assert cfg.models[0].model == "/models/x.gguf"
    assert cfg.gateway.port == 9000            # unquoted: becomes a number
    assert cfg.models[0].name == "7"           # quoted: stays a string


def test_model_file_must_be_gguf(tmp_path):
    bad = tmp_path / "m.gguf"
    bad.write_bytes(b"NOPE" + b"\0" * 16)
    with pytest.raises(ConfigError) as err:
        load_source(f"model: {bad}\n", "x.yaml")
    assert "no GGUF magic" in str(err.value)
    good = tmp_path / "ok.gguf"
    good.write_bytes(b"GGUF" + b"\0" * 16)
    assert load_source(f"model: {good}\n", "x.yaml").config.models[0].model == str(good)


def test_missing_model_file_is_reported_unless_offline(tmp_path):
    with pytest.raises(ConfigError, match="model file not found"):
        load_source("model: nope.gguf\n", str(tmp_path / "c.yaml"))
    load_source("model: nope.gguf\n", str(tmp_path / "c.yaml"), offline=True)


def test_assumed_devices_checked_against_ids():
    from launcher.devices import parse_assumed
    text = "model: m.gguf\ndevices: {backend: cann, ids: [0, 9]}\nparallel: {mode: layer}\n"
    with pytest.raises(ConfigError, match="device 9 is not assumed"):
        load_source(text, "x.yaml", offline=True, assume=parse_assumed("cann:8"))


def test_engine_params_dataclass_matches_schema():
    assert set(engine_keys()) == {f for f in EngineParams.__dataclass_fields__}


def test_every_schema_key_has_a_description():
    def walk(node, path=""):
        for key, sub in node.get("properties", {}).items():
            assert sub.get("description"), f"{path}{key} has no description"
            walk(sub, f"{path}{key}.")
    walk(schema())


def test_readme_config_reference_is_up_to_date():
    from launcher.docs import render_readme
    readme = (ROOT / "README.md").read_text()
    assert render_readme(readme) == readme, "README is stale: run python -m launcher.docs"


def test_ep_tp_without_ids_takes_every_assumed_npu_one_rank_each():
    from launcher.devices import parse_assumed
    text = ("model: m.gguf\nengine: {flavor: ascend-fork}\ndevices: {backend: cann}\n"
            "parallel: {mode: ep_tp, ranks: 2, tp_size: 2, ep_size: 2}\n")
    load_source(text, "x.yaml", offline=True, assume=parse_assumed("cann:2"))
    with pytest.raises(ConfigError, match=r"ranks is 2 but the job has 8 NPUs \(every assumed one\)"):
        load_source(text, "x.yaml", offline=True, assume=parse_assumed("cann:8"))
    explicit = text.replace("ranks: 2,", "ranks: 2, devices_per_rank: 4,")
    assert load_source(explicit, "x.yaml", offline=True, assume=parse_assumed("cann:8")).config.models[0] \
        .parallel.devices_per_rank == 4


def test_keys_the_fork_guide_does_not_document_get_a_warning():
    text = "model: m.gguf\nengine: {flavor: ascend-fork}\nflash_attn: on\njinja: true\nn_ctx: 4096\nenable_mla: true\n"
    warnings = load_source(text, "x.yaml", offline=True).warnings
    assert sorted(w.dotted for w in warnings) == ["flash_attn", "jinja"]
    assert all("not among the keys the Ascend fork's guide documents" in w.message for w in warnings)
    assert load_source(text.replace("ascend-fork", "upstream").replace("enable_mla: true\n", ""), "x.yaml",
                       offline=True).warnings == ()


def test_presample_count_minus_one_disables_it_as_the_guide_says():
    cfg = load_source("model: m.gguf\nengine: {flavor: ascend-fork}\npresample_count: -1\n", "x.yaml",
                      offline=True).config
    assert cfg.models[0].params.presample_count == -1
    assert "-1 disables" in schema()["$defs"]["model_settings"]["properties"]["presample_count"]["description"]
