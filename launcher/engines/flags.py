"""Config key -> engine flag, derived from the schema's annotations (one source of truth).

`x-flag` is the llama-server flag, `x-python-flag` the llama-cpp-python server's. Rendering
follows the value's type: booleans become a flag or its negation, lists are comma-joined,
everything else is `--flag value`. The few keys that do not fit (mmap/mlock became
`--load-mode` upstream) are handled by name below. Keys whose flag a given binary does not
list in `--help` are reported as FlagIssues, not dropped silently.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..config.model import EngineParams
from ..config.schema import annotated


@dataclass(frozen=True)
class FlagIssue:
    """A config key whose flag the engine binary does not list in its --help: not passed."""
    key: str
    flag: str
    binary: str

    def format(self) -> str:
        return f"{self.key}: {self.binary} does not support {self.flag}; the key is not passed"


# Boolean keys whose "false" has its own flag in upstream arg.cpp.
_NEGATION = {
    "cont_batching": "--no-cont-batching",
    "no_perf": "--perf",
    "jinja": "--no-jinja",
    "repack": "--no-repack",
}
# Keys rendered by launcher itself (model path, alias and ports are placed by the planner).
_PLACED_BY_PLANNER = {"model", "model_alias"}


def flag_table() -> dict[str, str]:
    """Config key -> llama-server flag, for every engine key that has one."""
    return {k: v for k, v in annotated("x-flag").items() if k not in _PLACED_BY_PLANNER}


def engine_flags(params: EngineParams) -> list[tuple[str, list[str]]]:
    """[(key, argv fragment)] for every key the user set, in declaration order."""
    table = flag_table()
    out: list[tuple[str, list[str]]] = []
    load_mode = _load_mode(params)
    for key, value in params.set_items():
        if key not in table:
            continue
        flag = table[key]
        if key in ("use_mmap", "use_mlock"):
            if load_mode:
                out.append((key, ["--load-mode", load_mode]))
                load_mode = None  # both keys make one flag
            continue
        if isinstance(value, bool):
            if value:
                out.append((key, [flag]))
            elif key in _NEGATION:
                out.append((key, [_NEGATION[key]]))
            continue
        if isinstance(value, (tuple, list)):
            out.append((key, [flag, ",".join(_num(v) for v in value)]))
            continue
        out.append((key, [flag, _num(value)]))
    return out


def python_server_flags(params: EngineParams, threads: int | None) -> tuple[list[str], list[str]]:
    """argv for llama-cpp-python's server (`--name value`, booleans as True/False), and notes."""
    argv: list[str] = []
    notes: list[str] = []
    for key, flag in annotated("x-python-flag").items():
        value = getattr(params, key)
        if key == "n_threads" and value is None:
            value = threads  # the replica's share of the cores
        if value is None:
            continue
        if key == "n_gpu_layers" and value in ("all", "auto"):
            if value == "auto":
                notes.append("n_gpu_layers: llama-cpp-python cannot fit layers to free memory; `auto` offloads all")
            value = -1
        if key == "flash_attn":
            if value == "auto":
                continue  # the server's own default
            value = value == "on"
        argv += [flag, str(value)]
    return argv, notes


def _load_mode(params: EngineParams) -> str | None:
    if params.use_mmap is None and params.use_mlock is None:
        return None
    mmap = params.use_mmap is not False
    mlock = bool(params.use_mlock)
    return {(True, True): "mmap+mlock", (True, False): "mmap", (False, True): "mlock", (False, False): "none"}[(mmap, mlock)]


def _num(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def supported_flags(help_text: str) -> set[str]:
    """Every long or short option a `--help` output lists."""
    return set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", help_text))


def unsupported(fragments: list[tuple[str, list[str]]], help_text: str | None, binary: str) -> list[FlagIssue]:
    if not help_text:
        return []
    known = supported_flags(help_text)
    return [FlagIssue(key, argv[0], binary) for key, argv in fragments if argv[0] not in known]
