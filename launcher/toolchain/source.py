"""Where the llama.cpp source comes from: a user's tree, or the one pinned with launcher.

The default is the upstream tree vendored in the llama-cpp-python sdist, so the same
version backs the binaries and the Python bindings (same ABI: one compile serves both).
"""
from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path

from ..errors import BuildError
from ..paths import sources_dir

_PIN = re.compile(r"llama[-_]cpp[-_]python(?:\[[^\]]*\])?\s*==\s*([\w.]+)")


def pinned_bindings_version() -> str:
    """The llama-cpp-python version of launcher's `bindings` extra (pyproject.toml, the one pin)."""
    try:
        requirements = "\n".join(metadata.requires("launcher") or [])
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        requirements = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    match = _PIN.search(requirements)
    if not match:
        raise BuildError("launcher's metadata has no llama-cpp-python pin (extra `bindings` in pyproject.toml)")
    return match.group(1)


BINDINGS_VERSION = pinned_bindings_version()
DEFAULT_SOURCE_ID = f"llama-cpp-python-{BINDINGS_VERSION}"


def default_source(download: bool = True) -> Path | None:
    root = sources_dir() / DEFAULT_SOURCE_ID
    tree = root / "vendor" / "llama.cpp"
    if (tree / "CMakeLists.txt").exists():
        return tree
    if not download:
        return None
    sources_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=sources_dir()) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=llama-cpp-python",
               f"llama-cpp-python=={BINDINGS_VERSION}", "-d", tmp, "-q"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        archives = list(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if res.returncode != 0 or not archives:
            raise BuildError(f"could not download the llama.cpp source (llama-cpp-python=={BINDINGS_VERSION} sdist): "
                             f"{res.stderr.strip()[-500:]}; " + hint_source())
        with tarfile.open(archives[0]) as tar:
            tar.extractall(tmp, filter="data")
        extracted = Path(tmp) / f"llama_cpp_python-{BINDINGS_VERSION}"
        extracted.rename(root)  # atomic within one filesystem: never a half-extracted tree
    return tree


def hint_source() -> str:
    return "or give a llama.cpp tree with --source DIR (build.source in the config)"


def source_identity(tree: Path) -> str:
    """Stable id of a tree: pinned version, or git commit plus a hash of uncommitted changes."""
    if tree.resolve() == (sources_dir() / DEFAULT_SOURCE_ID / "vendor" / "llama.cpp").resolve():
        return DEFAULT_SOURCE_ID
    try:
        head = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True)
        if head.returncode == 0:
            dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True).stdout
            diff = subprocess.run(["git", "-C", str(tree), "diff", "HEAD"], capture_output=True, text=True).stdout
            suffix = hashlib.sha256((dirty + diff).encode()).hexdigest()[:12] if dirty else "clean"
            return f"git:{head.stdout.strip()}:{suffix}"
    except OSError:
        pass
    # No git: sizes and mtimes of the build inputs.
    h = hashlib.sha256()
    for path in sorted(tree.rglob("*")):
        if path.suffix in (".c", ".cpp", ".h", ".hpp", ".cu", ".txt", ".cmake") and path.is_file():
            st = path.stat()
            h.update(f"{path.relative_to(tree)}:{st.st_size}:{int(st.st_mtime)}".encode())
    return f"tree:{tree.resolve()}:{h.hexdigest()[:16]}"
