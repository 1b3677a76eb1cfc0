"""Tier 1: the cmake command lines for every backend, including the ones we cannot build here."""
from pathlib import Path

import pytest

from launcher.toolchain.cache import build_key
from launcher.toolchain.recipe import (
    BuildRequest,
    cann_graph_flag,
    has_fork_server,
    preflight,
    recipe,
)

CANN_LISTS = 'option(USE_ACL_GRAPH "Enable CANN graph execution (ACL graph mode)" OFF)\n'


def tree(tmp_path: Path, cann_lists: str = CANN_LISTS, fork: bool = False) -> Path:
    root = tmp_path / "llama.cpp"
    (root / "ggml/src/ggml-cann").mkdir(parents=True)
    (root / "CMakeLists.txt").write_text("project(llama.cpp)\n")
    (root / "ggml/src/ggml-cann/CMakeLists.txt").write_text(cann_lists)
    if fork:
        (root / "tools/mpi-server").mkdir(parents=True)
        (root / "tools/mpi-server/CMakeLists.txt").write_text("set(TARGET llama-mpi-server)\n")
    return root


def which_all(name):
    return f"/usr/bin/{name}"


def test_cann_recipe_sets_backend_soc_and_graph_flag(tmp_path):
    req = BuildRequest("cann", tree(tmp_path), "v", soc_type="Ascend910B3", acl_graph=True)
    rec = recipe(req, tmp_path / "b")
    conf = " ".join(rec.configure)
    assert conf.startswith(f"cmake -S {req.source} -B {tmp_path / 'b'} -C ")
    assert str(rec.preset).endswith("cmake/cann.cmake") and rec.configure[5:7] == ("-C", str(rec.preset))
    assert "-DSOC_TYPE=Ascend910B3" in rec.configure and "-DUSE_ACL_GRAPH=ON" in rec.configure
    assert "GGML_NATIVE" not in conf and "amx" not in conf
    assert rec.build[-5:] == ("--target", "llama-server", "ggml-rpc-server", "llama-bench", "llama-quantize")
    cann_cmake = rec.preset.read_text()
    assert "set(GGML_CANN ON" in cann_cmake


def test_cann_graph_flag_name_is_read_from_the_tree(tmp_path):
    other = tree(tmp_path, 'option(CANN_GRAPH "graph" OFF)\n')
    assert cann_graph_flag(other) == "CANN_GRAPH"
    rec = recipe(BuildRequest("cann", other, "v", acl_graph=False), tmp_path / "b")
    assert "-DCANN_GRAPH=OFF" in rec.configure


def test_cann_without_toolkit_is_a_clear_error_before_cmake(tmp_path):
    req = BuildRequest("cann", tree(tmp_path), "v")
    problems = preflight(req, {}, lambda name: None if name == "npu-smi" else f"/usr/bin/{name}")
    text = "\n".join(problems)
    assert "ASCEND_TOOLKIT_HOME" in text and "set_env.sh" in text
    assert "soc_type" in text  # no npu-smi and no soc_type: cannot detect the SoC


def toolkit(tmp_path):
    """A CANN toolkit with its development headers (what llama.cpp's CANN backend compiles against)."""
    (tmp_path / "toolkit" / "include" / "acl").mkdir(parents=True)
    (tmp_path / "toolkit" / "include" / "acl" / "acl.h").write_text("")
    return str(tmp_path / "toolkit")


def test_cann_with_toolkit_and_soc_passes_preflight(tmp_path):
    req = BuildRequest("cann", tree(tmp_path), "v", soc_type="Ascend910B3")
    assert preflight(req, {"ASCEND_TOOLKIT_HOME": toolkit(tmp_path)}, which_all) == []


def test_a_toolkit_without_its_headers_is_refused_before_cmake(tmp_path):
    req = BuildRequest("cann", tree(tmp_path), "v", soc_type="Ascend910B3")
    (problem,) = preflight(req, {"ASCEND_TOOLKIT_HOME": str(tmp_path)}, which_all)
    assert "include/acl/acl.h" in problem and "LLAMA_SERVER_PATH" in problem


def test_cuda_recipe_and_missing_nvcc(tmp_path):
    req = BuildRequest("cuda", tree(tmp_path), "v", cuda_architectures="80;90")
    rec = recipe(req, tmp_path / "b")
    assert "-DCMAKE_CUDA_ARCHITECTURES=80;90" in rec.configure
    assert str(rec.preset).endswith("cmake/cuda.cmake")
    problems = preflight(req, {}, lambda n: None if n == "nvcc" else f"/usr/bin/{n}")
    assert any("nvcc" in p for p in problems)


@pytest.mark.parametrize("native,machine,amx", [(True, "x86_64", True), (False, "x86_64", False),
                                               (True, "aarch64", False)])
def test_cpu_native_builds_disable_amx_on_x86(tmp_path, native, machine, amx):
    rec = recipe(BuildRequest("cpu", tree(tmp_path), "v", native=native), tmp_path / "b", machine=machine)
    assert f"-DGGML_NATIVE={'ON' if native else 'OFF'}" in rec.configure
    assert any("-mno-amx-tile" in a for a in rec.configure) == amx


def test_fork_tree_also_builds_llama_mpi_server(tmp_path):
    root = tree(tmp_path, fork=True)
    assert has_fork_server(root)
    assert "llama-mpi-server" in recipe(BuildRequest("cann", root, "v"), tmp_path / "b").targets


def test_build_key_changes_with_inputs_not_with_paths(tmp_path):
    root = tree(tmp_path)
    a = BuildRequest("cpu", root, "v1")
    key = build_key(a, recipe(a, tmp_path / "x"), "gcc 12")
    assert key == build_key(a, recipe(a, tmp_path / "elsewhere"), "gcc 12")
    assert key != build_key(a, recipe(a, tmp_path / "x"), "gcc 13")
    b = BuildRequest("cpu", root, "v2")
    assert key != build_key(b, recipe(b, tmp_path / "x"), "gcc 12")
    c = BuildRequest("cpu", root, "v1", cmake_args=("-DGGML_AVX512=OFF",))
    assert key != build_key(c, recipe(c, tmp_path / "x"), "gcc 12")


def test_smoke_test_names_sigill_when_the_server_crashes(tmp_path):
    from launcher.errors import BuildError
    from launcher.toolchain.smoke import smoke_test
    server = tmp_path / "llama-server"
    server.write_text("#!/bin/sh\necho 'ggml: tilezero'\nkill -ILL $$\n")
    server.chmod(0o755)
    with pytest.raises(BuildError, match="SIGILL") as err:
        smoke_test(server, tmp_path / "m.gguf", tmp_path / "log", timeout=20)
    assert "tilezero" in err.value.log_tail


def test_fork_tree_needs_mpicxx_and_refuses_bisheng(tmp_path):
    req = BuildRequest("cann", tree(tmp_path, fork=True), "v", soc_type="Ascend910B3")
    env = {"ASCEND_TOOLKIT_HOME": str(tmp_path), "CC": "/usr/local/Ascend/bisheng", "CXX": "bisheng"}
    problems = preflight(req, env, lambda n: None if n == "mpicxx" else f"/usr/bin/{n}")
    assert any("mpicxx" in p for p in problems)
    assert sum("Bisheng compiler is not supported" in p and "no MPI support" in p for p in problems) == 2
    assert preflight(req, {"ASCEND_TOOLKIT_HOME": toolkit(tmp_path)}, which_all) == []


def test_cann_preset_builds_as_the_ascend_guide_does(tmp_path):
    text = recipe(BuildRequest("cann", tree(tmp_path), "v"), tmp_path / "b").preset.read_text()
    for line in ('set(GGML_CANN ON', 'set(CMAKE_C_FLAGS "-O2"', 'set(CMAKE_CXX_FLAGS "-O2"', 'set(GGML_CUDA OFF'):
        assert line in text
