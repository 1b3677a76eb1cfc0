"""llama-cpp-python without a second compile: it loads our build's libllama (LLAMA_CPP_LIB_PATH).

Installed with CMAKE_ARGS="-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF" (see Makefile). Its ctypes
declarations must match the library, so the build's source must be the same version.
"""
from __future__ import annotations

from importlib import metadata

from ..errors import BuildError
from ..toolchain.cache import BuiltTree
from ..toolchain.source import BINDINGS_VERSION, DEFAULT_SOURCE_ID

LIB_ENV = "LLAMA_CPP_LIB_PATH"


def installed_version() -> str | None:
    try:
        return metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError:
        return None


def check_bindings(tree: BuiltTree, version: str | None = None) -> dict[str, str]:
    """Env that makes llama_cpp load `tree`'s libllama; refuses a version mismatch."""
    version = version if version is not None else installed_version()
    if version is None:
        raise BuildError("llama-cpp-python is not installed: CMAKE_ARGS=\"-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF\" "
                         "pip install 'launcher[bindings]' (no second compile)")
    if tree.source_id != f"llama-cpp-python-{version}":
        raise BuildError(f"llama-cpp-python {version} cannot use this build: it was compiled from {tree.source_id}, "
                         f"and the bindings' C declarations must match the library exactly. Use the pinned source "
                         f"({DEFAULT_SOURCE_ID}, the default of `launch build`) with llama-cpp-python=={BINDINGS_VERSION}.")
    if not (tree.bin_dir / "libllama.so").exists():
        raise BuildError(f"{tree.bin_dir} has no libllama.so (the build must use BUILD_SHARED_LIBS=ON)")
    return {LIB_ENV: str(tree.bin_dir)}
