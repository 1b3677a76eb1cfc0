"""The memory plan against the real llama-server on Gemma, and `launch validate` / `launch plan` on it."""
import subprocess
import sys

from launcher.bench.memory_accuracy import BUFFERS, measure, table

LAUNCH = [sys.executable, "-m", "launcher"]


def test_estimate_is_within_ten_percent_of_what_llama_server_allocates(built, gemma):
    rows = measure(str(gemma))
    print("\n" + table(rows))
    assert len(rows) >= 8
    for row in rows:
        for buffer in BUFFERS:
            assert row.logged[buffer] > 0, f"{row.setting}: llama-server logged no {buffer} buffer"
            assert abs(row.ratio(buffer) - 1) <= 0.10, f"{row.setting}: {buffer} {row.ratio(buffer):.0%}"


def config(tmp_path, gemma, extra="", ids="[0]"):
    path = tmp_path / "npu.yaml"
    path.write_text(f"model: {gemma}\ndevices:\n  backend: cann\n  ids: {ids}\nn_ctx: 32768\n{extra}")
    return str(path)


def run(*args):
    return subprocess.run([*LAUNCH, *args], capture_output=True, text=True, timeout=120)


def test_validate_names_the_device_the_shortfall_and_fixes_that_each_fit(tmp_path, gemma):
    done = run("validate", config(tmp_path, gemma), "--assume-devices", "cann:2x400m")
    assert done.returncode == 2, done.stderr
    error = next(line for line in done.stderr.splitlines() if "will not fit" in line)
    assert "npu.yaml:2:" in error                      # file and line of the model's devices
    assert "NPU 0 (CANN0) needs 421 MiB" in error and "has 400 MiB: 21 MiB short" in error
    hint = done.stderr.split("will not fit", 1)[1]
    for fix in ("n_ctx: 27", "cache_type_k: q8_0", "devices.ids: [0, 1]", "a smaller quant: Q4_0"):
        assert fix in hint, done.stderr
    # The n_ctx it offers does fit: validation passes with it.
    n_ctx = hint.split("n_ctx: ", 1)[1].split()[0]
    text = open(config(tmp_path, gemma)).read().replace("n_ctx: 32768", f"n_ctx: {n_ctx}")
    (tmp_path / "fixed.yaml").write_text(text)
    assert run("validate", str(tmp_path / "fixed.yaml"), "--assume-devices", "cann:2x400m").returncode == 0


def test_a_device_above_90_percent_is_a_warning(tmp_path, gemma):
    done = run("validate", config(tmp_path, gemma), "--assume-devices", "cann:1x450m")
    assert done.returncode == 0, done.stderr
    assert "fills NPU 0 (CANN0) to 94%" in done.stderr


def test_devices_memory_key_gives_the_size_when_none_is_detected(tmp_path, gemma):
    done = run("validate", config(tmp_path, gemma), "--assume-devices", "cann:2")
    assert done.returncode == 0   # size unknown: nothing to weigh
    path = config(tmp_path, gemma)
    text = open(path).read().replace("ids: [0]", "ids: [0]\n  memory: 400m")
    open(path, "w").write(text)
    assert run("validate", path, "--assume-devices", "cann:2").returncode == 2


def test_plan_prints_the_per_device_table(tmp_path, gemma):
    done = run("plan", "--config", config(tmp_path, gemma, "parallel: {mode: layer}\n", ids="[0, 1]"),
               "--assume-devices", "cann:2x64g")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("#   ")]
    assert any(line.split()[1:3] == ["host", "-"] for line in lines), done.stdout
    npu0 = next(line for line in lines if "NPU 0 (CANN0)" in line).split()
    npu1 = next(line for line in lines if "NPU 1 (CANN1)" in line).split()
    assert npu0[4] == "0-9" and npu1[4] == "10-17", done.stdout   # 19 layers (with the head) split 50/50
    assert npu0[-2] == npu1[-2] == "65536"
    assert "--tensor-split 65536,65536" in done.stdout
