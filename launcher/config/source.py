"""Read a YAML file into plain data plus a map from YAML path to line number.

PyYAML's `safe_load` forgets where things were; we compose the node tree once and
keep each key's mark so every later problem can point at file:line.
Also done here, before validation: duplicate keys (PyYAML silently keeps the last)
and `${VAR}` / `${VAR:-default}` expansion in string values.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .problems import Problem

Path_ = tuple  # a YAML path: keys and list indexes from the root

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class Source:
    """A loaded config document: data, where each path sits, and load problems."""
    file: str
    data: Any
    lines: dict = field(default_factory=dict)  # Path_ -> (line, column), 1-based
    problems: list = field(default_factory=list)
    from_env: dict = field(default_factory=dict)  # Path_ -> environment variable a default came from
    renamed: dict = field(default_factory=dict)   # Path_ -> how the file wrote it (another format's key)
    from_machine: dict = field(default_factory=dict)  # Path_ -> why launcher filled it in from the machine

    def where(self, path: Path_) -> tuple[int, int]:
        """Line of `path`, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path, (1, 1))

    def problem(self, path: Path_, message: str, *, value: Any = None, hint: str = "",
                warning: bool = False) -> Problem:
        line, col = self.where(path)
        for key, written in self.renamed.items():
            if tuple(path)[:len(key)] == key:
                path = written + tuple(path)[len(key):]
                break
        for key, name in self.from_env.items():
            if tuple(path)[:len(key)] == key:
                message += f" (from the environment variable {name})"
        for key, why in self.from_machine.items():
            if tuple(path)[:len(key)] == key:
                message += f" (launcher's choice on this machine: {why})"
        return Problem(self.file, line, col, tuple(path), message, value, hint, warning)


def load_file(path: str | Path, env: Mapping[str, str] | None = None) -> Source:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        src = Source(str(path), None)
        src.problems.append(Problem(str(path), 0, 0, (), f"cannot read config: {exc.strerror}", None,
                                    "check the path given to --config"))
        return src
    return load_text(text, str(path), env)


def load_text(text: str, file: str = "<string>", env: Mapping[str, str] | None = None) -> Source:
    env = os.environ if env is None else env
    src = Source(file, None)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        opened = ""
        if exc.context_mark and exc.problem_mark and exc.context_mark.line != exc.problem_mark.line:
            opened = f" ({exc.context} on line {exc.context_mark.line + 1})"
        src.problems.append(Problem(file, line, col, (), f"YAML syntax error: {exc.problem}{opened}", None,
                                    "check indentation, brackets and quoting"))
        return src
    if node is None:
        src.data = {}
        return src
    src.data = _build(node, (), src, env)
    return src


def _build(node: yaml.Node, path: Path_, src: Source, env: Mapping[str, str]) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            child = path + (key,)
            if key in out:
                first = src.lines[child][0]
                line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                src.problems.append(Problem(src.file, line, col, child,
                                            f"duplicate key {key!r} (first set on line {first})",
                                            None, "YAML keeps only the last one; remove one of them"))
                continue
            src.lines[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _build(value_node, child, src, env)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            src.lines[path + (i,)] = (item.start_mark.line + 1, item.start_mark.column + 1)
            items.append(_build(item, path + (i,), src, env))
        return items
    value = _scalar(node)
    if isinstance(value, str) and "${" in value:
        value = _expand(value, node, path, src, env)
    return value


def _scalar(node: yaml.Node) -> Any:
    # Let PyYAML resolve the tag (int, bool, null...) exactly as safe_load would.
    return yaml.SafeLoader(" ").construct_object(node, deep=True)


def _expand(value: str, node: yaml.ScalarNode, path: Path_, src: Source, env: Mapping[str, str]) -> Any:
    missing = []

    def sub(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            return default
        missing.append(name)
        return match.group(0)

    expanded = _VAR.sub(sub, value)
    for name in missing:
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        src.problems.append(Problem(src.file, line, col, path, f"environment variable {name} is not set",
                                    value, f"export {name}=... or write ${{{name}:-default}}"))
    # An unquoted `port: ${PORT:-8080}` should be the number 8080, as if written inline.
    if node.style is None and not missing:
        try:
            resolved = yaml.safe_load(expanded)
        except yaml.YAMLError:
            return expanded
        if isinstance(resolved, (int, float, bool)) or resolved is None:
            return resolved
    return expanded
