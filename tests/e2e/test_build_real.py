"""Tier 2: the real cached CPU build, its smoke test, and the Python bindings over the same libllama."""
import json
import os
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from launcher.bindings import check_bindings
from launcher.engines import LlamaCppPython, LlamaServer
from launcher.errors import BuildError
from tests.e2e.conftest import GEMMA


def test_second_build_is_a_noop_and_is_listed(built, run_launch):
    res = run_launch("build", "--backend", "cpu", timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"up to date: {built.key} (cpu)")
    listing = run_launch("build", "--list")
    line = [ln for ln in listing.stdout.splitlines() if ln.startswith(built.key)]
    assert line and " cpu " in line[0] and "llama-cpp-python-0.3.36" in line[0]


def test_bindings_load_our_libllama_and_generate(built, gemma):
    env = check_bindings(built)
    code = ("import llama_cpp, sys; "
            "llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=256, verbose=False); "
            "print(llama_cpp.llama_cpp._lib._name); "
            "print(llm('The capital of France is', max_tokens=4, temperature=0)['choices'][0]['text'])")
    res = subprocess.run([sys.executable, "-c", code, str(gemma)], capture_output=True, text=True,
                         env={**os.environ, **env}, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    lib, text = res.stdout.splitlines()[:2]
    assert lib.startswith(str(built.bin_dir)) and text.strip()


def test_bindings_of_another_version_are_refused(built):
    with pytest.raises(BuildError, match="cannot use this build"):
        check_bindings(built, version="0.3.20")


def test_both_engine_kinds_give_the_same_greedy_output(launch):
    # Same numerics on both sides: flash attention and the full SWA cache (llama-cpp-python's only mode)
    # change which of two close tokens wins on a 270M model.
    prompt = "Once upon a time, in a small village,"
    texts = {}
    for kind in (LlamaServer.name, LlamaCppPython.name):
        text = GEMMA.replace("n_parallel: 2", "n_parallel: 1\nflash_attn: 'on'\nswa_full: true").replace("engine: {", f"engine: {{kind: {kind}, ")
        run = launch(text)
        c = openai.OpenAI(base_url=run.url + "/v1", api_key="x", max_retries=0, timeout=120)
        texts[kind] = c.completions.create(model="gemma", prompt=prompt, max_tokens=16, temperature=0,
                                            extra_body={"repeat_penalty": 1.0}).choices[0].text
        run.stop()
    assert texts[LlamaServer.name] and texts[LlamaServer.name] == texts[LlamaCppPython.name], texts


def test_k_quant_model_on_cann_gets_a_warning(gemma):
    from launcher.devices import parse_assumed
    from launcher.validate import load_source
    text = f"model: {gemma}\ndevices: {{backend: cann, ids: [0]}}\n"
    result = load_source(text, "x.yaml", assume=parse_assumed("cann:1"))
    [w] = result.warnings
    assert "Q4_K_M" in w.message and "run on the CPU" in w.message and w.warning
    assert w.hint == f"make a Q8_0 copy and serve that: launch quantize {gemma} " \
                     f"{gemma.parent / 'gemma-3-270m-Q8_0.gguf'} q8_0"


ENGINE_SCRIPT = """
import json, sys
from launcher.bindings import LlamaCppEngine
engine = LlamaCppEngine(model_path=sys.argv[1], n_ctx=512)
engine.load()
import llama_cpp  # already imported by load(), bound to launcher's build
full = engine.complete("The capital of France is", max_new_tokens=8, temperature=0)
pieces = list(engine.generate_stream("The capital of France is", max_tokens=8, temperature=0))
print(json.dumps({"lib": llama_cpp.llama_cpp._lib._name, "text": full.text, "finish": full.finish_reason,
                  "tokens": full.completion_tokens, "pieces": pieces}))
"""


def test_llama_cpp_engine_generates_in_process_on_launchers_own_build(built, gemma):
    """The built-in engine of Python workers: no second compile, the library of launcher's build."""
    env = {k: v for k, v in os.environ.items() if k != "LLAMA_CPP_LIB_PATH"}
    res = subprocess.run([sys.executable, "-c", ENGINE_SCRIPT, str(gemma)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.splitlines()[-1])
    assert out["lib"].startswith(str(built.bin_dir))
    assert out["text"].strip() and out["finish"] == "length" and out["tokens"] == 8
    assert len(out["pieces"]) > 1 and "".join(out["pieces"]) == out["text"]  # greedy: streaming changes nothing


@pytest.mark.parametrize("qtype", ["q8_0", "q4_0"])
def test_quantize_gemma_then_serve_the_copy(tmp_path, run_launch, start_launch, gemma, qtype):
    """The integration guide's quantize step, with launcher's own llama-quantize: CANN runs Q8_0/Q4_0."""
    from launcher.gguf_info import summarize
    from launcher.net import free_ports
    out = tmp_path / f"gemma-{qtype}.gguf"
    res = run_launch("quantize", str(gemma), str(out), qtype, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"wrote {out}") and summarize(out).quantization == qtype.upper()
    assert "already quantized; requantizing loses some quality" in res.stderr  # Gemma ships as Q4_K_M
    again = run_launch("quantize", str(gemma), str(out), qtype)
    assert again.returncode == 1 and "does not overwrite" in again.stderr
    port = next(free_ports())
    start_launch(["serve", str(out), "--name", "quantized", "--n-ctx", "512", "--n-parallel", "1", "--port",
                  str(port)], port)
    c = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0, timeout=60)
    assert c.completions.create(model="quantized", prompt="The capital of France is", max_tokens=4).choices[0].text


def test_quantize_names_the_types_it_knows(run_launch, gemma, tmp_path):
    res = run_launch("quantize", str(gemma), str(tmp_path / "x.gguf"), "q8")
    assert res.returncode == 1 and "unknown quantization type 'q8'" in res.stderr and "Q8_0" in res.stderr
    assert not (tmp_path / "x.gguf").exists() and not (tmp_path / "x.gguf.partial").exists()


def test_non_editable_install_lists_builds_and_plans(tmp_path, built):
    """`pip install .` (not -e): the schema and cmake/ come with the package, and the installed launch finds
    the same cached build (its cache key reads the installed cmake files)."""
    import sysconfig
    root = Path(__file__).resolve().parents[2]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-q", "--no-deps", str(root)],
                         capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-2000:]
    # Dependencies from this environment (no download): its site-packages after the new one's launcher.
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    where = subprocess.run([str(venv / "bin/python"), "-c", "import launcher\nfrom launcher.toolchain.recipe import "
                            "cmake_dir\nprint(launcher.__file__)\nprint(cmake_dir())"], capture_output=True, text=True,
                           env=env, cwd=tmp_path)
    package, cmake = where.stdout.splitlines()
    assert package.startswith(f"{venv}/lib/") and cmake == str(venv / "share/launcher/cmake")
    listing = subprocess.run([str(venv / "bin/launch"), "build", "--list"], capture_output=True, text=True, env=env,
                             cwd=tmp_path)
    assert listing.returncode == 0 and built.key in listing.stdout
    plan = subprocess.run([str(venv / "bin/launch"), "plan", "--offline", "--config",
                           str(root / "configs/config_gemma3_270m_cpu.yaml")], capture_output=True, text=True, env=env,
                          cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert f"{built.bin_dir}/llama-server --model" in plan.stdout
