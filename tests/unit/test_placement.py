"""Tier 1: several models placed on the devices by their memory plans (plan/placement.py), on synthetic headers
of DeepSeek-V2-Lite Q8_0, DeepSeek-V2 Q4_0, Qwen2-7B and Gemma 2 over `--assume-devices cann:8x64g` and
`cann:2x32g`: best fit, a split over the fewest devices, pinned models, replicas on different devices,
n_gpu_layers auto, determinism, and no room -> an error at the model with the smallest fixes."""
from __future__ import annotations

import pytest

from launcher.devices import parse_assumed
from launcher.errors import ConfigError
from launcher.memory.estimate import MiB
from launcher.plan import here
from launcher.plan.placement import NoRoom, place
from launcher.validate import load_config, load_source
from launcher.validate import memory as memory_checks
from tests.fakes.shapes import deepseek_v2_lite_q8_0, deepseek_v2_q4_0, gemma2_9b, qwen2_7b
from tests.unit.gguf_fixture import write_tiny_gguf

SHAPES = {"lite": deepseek_v2_lite_q8_0(), "big": deepseek_v2_q4_0(), "qwen": qwen2_7b(), "gemma": gemma2_9b()}
FILES = {"lite": "DeepSeek-V2-Lite-Chat-Q8_0.gguf", "big": "DeepSeek-V2-Chat-Q4_0.gguf", "qwen": "qwen2-7b-q8_0.gguf",
         "gemma": "gemma-2-9b-q8_0.gguf"}


def config(*models: str, devices: str = "cann:8x64g", extra: str = ""):
    """models: 'name' or 'name:key=value;...' (its shape: the name without a digit suffix, e.g. lite2)."""
    lines = ["devices: {backend: cann}", "n_ctx: 4096", "models:"]
    for m in models:
        name, _, opts = m.partition(":")
        kind = name.rstrip("0123456789")
        entry = [f"model: /srv/models/{name}-{FILES[kind]}", f"model_alias: {name}"]
        entry += [f"{k}: {v}" for k, v in (o.split("=", 1) for o in opts.split(";") if o)]
        lines.append("  - {" + ", ".join(entry) + "}")
    return load_source("\n".join(lines) + "\n" + extra, "models.yaml", offline=True).config


def placed(cfg, devices: str = "cann:8x64g"):
    shapes = {s.name: SHAPES[s.name.rstrip("0123456789")] for s in cfg.models}
    return place(list(cfg.models), shapes, parse_assumed(devices))


def where(placement) -> dict[str, tuple]:
    return {p.model: (p.mode, p.ids) for p in placement.placed}


def test_models_that_fit_one_device_are_packed_best_fit():
    p = placed(config("lite", "qwen", "gemma"))
    assert where(p) == {"lite": ("single", (0,)), "qwen": ("single", (0,)), "gemma": ("single", (0,))}
    left = p.left()
    assert left[1] == 64 * 1024 * MiB and 0 < left[0] < 64 * 1024 * MiB - 12 * 2**30   # whole devices stay free
    assert all("least unused room" in q.why for q in p.placed)


def test_a_model_no_device_holds_is_split_over_the_fewest_with_the_most_room():
    p = placed(config("lite", "big"))
    assert where(p)["lite"] == ("single", (0,))
    mode, ids = where(p)["big"]
    assert mode == "layer" and ids == (1, 2)        # 74 GiB: two 64 GiB NPUs, the emptiest (lowest ids on a tie)
    big = p.of("big")
    assert big.tensor_split == (0.5, 0.5) and "fits no one NPU" in big.why
    assert all(b <= 64 * 1024 * MiB for _, b in big.bytes)


def test_pinned_models_keep_their_devices_and_count_first():
    p = placed(config("big:devices={backend: cann, ids: [0, 1]};parallel={mode: layer}", "lite", "qwen"))
    assert where(p)["big"] == ("layer", (0, 1)) and "pinned" in p.of("big").why
    assert where(p)["lite"][1] == where(p)["qwen"][1]   # packed together on the device the pinned one left
    assert set(where(p)["lite"][1]).isdisjoint({0, 1}) or p.left()[where(p)["lite"][1][0]] >= 0


def test_replicas_go_to_different_devices():
    p = placed(config("qwen:parallel={mode: replicas, replicas: 3}", "gemma"))
    mode, ids = where(p)["qwen"]
    assert mode == "replicas" and len(set(ids)) == 3


def test_preload_models_are_placed_before_on_demand_ones_and_the_same_input_gives_the_same_placement():
    cfg = config("gemma:preload=false", "lite", "qwen:preload=false", devices="cann:2x32g")
    first, again = placed(cfg, "cann:2x32g"), placed(cfg, "cann:2x32g")
    assert first == again
    assert [q.model for q in first.placed] == ["lite", "gemma", "qwen"]
    assert [q.preload for q in first.placed] == [True, False, False]
    table = "\n".join(first.table())
    assert "NPU 0" in table and "NPU 1" in table and "left" in table and "* on demand" in table


def test_n_gpu_layers_auto_becomes_the_most_layers_that_fit():
    auto = "devices={backend: cann, ids: auto}"    # one model alone is placed when it says so
    whole = placed(config(f"qwen:n_gpu_layers=auto;{auto}"))
    assert whole.of("qwen").n_gpu_layers == SHAPES["qwen"].n_layer + 1
    part = placed(config(f"big:n_gpu_layers=auto;{auto}"), "cann:1x32g")
    big = part.of("big")
    assert 0 < big.n_gpu_layers < SHAPES["big"].n_layer and "the rest run on the host" in big.why
    assert big.on(0) <= 32 * 1024 * MiB


def test_when_the_preloaded_set_cannot_fit_the_error_names_the_model_and_its_smallest_fixes(monkeypatch, tmp_path):
    with pytest.raises(NoRoom) as err:
        placed(config("big:devices={backend: cann, ids: auto}"), "cann:2x32g")
    assert err.value.spec.name == "big" and "fits on no NPU and no split" in str(err.value)
    # through launch validate: the error sits at the model's devices, with the fixes checked by planning again
    synthetic = lambda spec: SHAPES[spec.name.rstrip("0123456789")]  # noqa: E731
    monkeypatch.setattr(here, "shape_of", synthetic)
    monkeypatch.setattr(memory_checks, "shape_of", synthetic)
    for name in "abcdefg":   # real (tiny) files: what is read of them here is the synthetic header above
        write_tiny_gguf(tmp_path / f"{name}.gguf", 4096, "deepseek2", 4)
    text = ("devices: {backend: cann}\nn_ctx: 4096\nmodels:\n"
            "  - {model: a.gguf, model_alias: lite1}\n  - {model: b.gguf, model_alias: lite2}\n"
            "  - {model: c.gguf, model_alias: lite3}\n  - {model: d.gguf, model_alias: lite4}\n"
            "  - {model: e.gguf, model_alias: lite5}\n  - {model: f.gguf, model_alias: lite6}\n"
            "  - {model: g.gguf, model_alias: lite7}\n")
    with pytest.raises(ConfigError) as bad:
        load_source(text, str(tmp_path / "five.yaml"), assume=parse_assumed("cann:2x32g"))
    [problem] = [p for p in bad.value.problems if not p.warning]
    # three per 32 GiB NPU, 1 GiB left on each: the seventh fits nowhere, not even split
    assert problem.line == 10 and "lite7" in problem.message
    assert problem.hint.startswith("fixes, each enough alone: preload: false on 'lite1'")
    # one model too big for the devices whatever the others do: its own fixes (here Q4_0, which CANN runs)
    (tmp_path / "lite.yaml").write_text("devices: {backend: cann, ids: auto}\nn_ctx: 4096\nmodel: a.gguf\n"
                                        "model_alias: lite\n")
    with pytest.raises(ConfigError) as bad:
        load_config(tmp_path / "lite.yaml", assume=parse_assumed("cann:1x8g"))
    [problem] = [p for p in bad.value.problems if not p.warning]
    assert problem.line == 1 and "'lite' fits on no NPU" in problem.message
    assert "launch quantize" in problem.hint and "Q4_0" in problem.hint


def test_launch_plan_shows_the_placement_and_plans_each_model_where_it_was_placed(monkeypatch, tmp_path):
    from launcher.plan.render import to_shell
    monkeypatch.setattr(here, "shape_of", lambda spec: SHAPES[spec.name.rstrip("0123456789")])
    for name in "ab":
        write_tiny_gguf(tmp_path / f"{name}.gguf", 4096, "deepseek2", 4)
    cfg = tmp_path / "two.yaml"
    cfg.write_text("devices: {backend: cann}\nn_ctx: 4096\nmodels:\n  - {model: a.gguf, model_alias: lite}\n"
                   "  - {model: b.gguf, model_alias: big}\n")
    assumed = parse_assumed("cann:8x64g")
    plan = here.plan_for_here(load_config(cfg, assume=assumed).config, assumed=assumed)
    text = to_shell(plan)
    assert "# placement on 8 cann device(s)" in text and "# big: fits no one NPU" in text
    by_name = {m.name: m for m in plan.models}
    assert dict(by_name["big"].processes[0].env)["ASCEND_RT_VISIBLE_DEVICES"] == "1,2"
    assert "--tensor-split" in by_name["big"].processes[0].argv
    assert dict(by_name["lite"].processes[0].env)["ASCEND_RT_VISIBLE_DEVICES"] == "0"


def test_memory_other_processes_hold_is_not_counted_free(monkeypatch):
    from launcher.telemetry import ChipReading
    busy = [ChipReading(0, "910B3", True, 0.0, 40.0, 90.0, 60 * 1024, 65536),   # another process: 60 GiB
            ChipReading(1, "910B3", True, 0.0, 40.0, 90.0, 3 * 1024, 65536)]
    monkeypatch.setattr(here, "device_readings", lambda backend: busy)
    monkeypatch.delenv("ASCEND_VISIBLE_DEVICES", raising=False)
    devices = parse_assumed("cann:2x64g")
    foreign = here.held_by_others(devices)
    assert foreign == {0: 60 * 2**30, 1: 3 * 2**30}
    cfg = config("lite", "qwen")
    p = place(list(cfg.models), {s.name: SHAPES[s.name] for s in cfg.models}, devices, foreign)
    assert where(p)["lite"] == ("single", (1,))          # 4 GiB left on NPU 0: not enough for 10 GiB
    assert p.left()[1] < 64 * 2**30 - 3 * 2**30 - 10 * 2**30
    assert "in use already" in "\n".join(p.table())
    monkeypatch.setenv("ASCEND_VISIBLE_DEVICES", "4,5")    # in a pod: the node's ids, matched in order
    busy[:] = [ChipReading(4, "910B3", True, 0.0, 40.0, 90.0, 1024, 65536),
               ChipReading(5, "910B3", True, 0.0, 40.0, 90.0, 2048, 65536)]
    assert here.held_by_others(parse_assumed("cann:2x64g")) == {0: 2**30, 1: 2 * 2**30}


def test_a_model_to_place_whose_header_cannot_be_read_is_a_problem_at_its_entry(tmp_path):
    (tmp_path / "a.gguf").write_bytes(b"GGUF not really")
    write_tiny_gguf(tmp_path / "b.gguf", 4096, "deepseek2", 4)
    text = "devices: {backend: cann}\nmodels:\n  - {model: a.gguf, model_alias: a}\n  - {model: b.gguf, model_alias: b}\n"
    with pytest.raises(ConfigError) as bad:
        load_source(text, str(tmp_path / "two.yaml"), assume=parse_assumed("cann:2x32g"))
    messages = [(p.line, p.message) for p in bad.value.problems if not p.warning]
    assert any(line == 3 and "'a'" in m for line, m in messages), messages


def test_memory_launchs_own_engines_hold_is_not_counted_as_others(monkeypatch):
    """A reload plans while launch's engines run: what they hold on a device is theirs, not another's."""
    import subprocess
    import sys

    from launcher.telemetry import ChipReading, DeviceProcess
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        monkeypatch.setattr(here, "device_readings", lambda backend: [
            ChipReading(0, "910B3", True, 0.0, 40.0, 90.0, 50 * 1024, 65536)])
        monkeypatch.setattr(here, "device_processes", lambda backend: [
            DeviceProcess(0, child.pid, "llama-server", 40 * 1024),     # ours: a child of this process
            DeviceProcess(0, 1, "someone-else", 8 * 1024)])
        monkeypatch.delenv("ASCEND_VISIBLE_DEVICES", raising=False)
        assert here.held_by_others(parse_assumed("cann:1x64g")) == {0: 10 * 2**30}
    finally:
        child.kill()
        child.wait()
