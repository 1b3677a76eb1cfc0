"""The Llama Switch document's `.env` file: `CONFIG_PATH` names it, else `./.env` is used when there is one.
Values are read by python-dotenv (comments after values, quotes, `export`); the environment wins over the
file, as godotenv (which the document's server uses) never overrides a variable that is already set. Only
the names launcher knows are taken from it (env_defaults.py); a project's `.env` may hold others.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from dotenv import dotenv_values

from .problems import Problem

PATH_VARIABLE = "CONFIG_PATH"
FILE_SOURCE = "the .env file"


@dataclass(frozen=True)
class Setting:
    value: str
    source: str    # "the environment" or "the .env file <path>:<line>"


def dotenv_path(env: Mapping[str, str], cwd: Path | None = None) -> Path | None:
    """The .env file in use: CONFIG_PATH's (which must exist), else ./.env when there is one."""
    named = env.get(PATH_VARIABLE)
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise DotEnvMissing(path)
        return path
    local = (cwd or Path.cwd()) / ".env"
    return local if local.is_file() else None


class DotEnvMissing(Exception):
    def __init__(self, path: Path):
        super().__init__(str(path))
        self.path = path

    def problem(self) -> Problem:
        return Problem(str(self.path), 0, 0, (), f"{PATH_VARIABLE} names {self.path}, which is not a file",
                       hint=f"the Llama Switch .env file; give an absolute path, or unset {PATH_VARIABLE} to use ./.env")


def settings(names: tuple[str, ...], env: Mapping[str, str], cwd: Path | None = None) -> dict[str, Setting]:
    """Each of `names` that is set: from the environment, else from the .env file (with its line)."""
    file = dotenv_path(env, cwd)
    values = {k: v for k, v in dotenv_values(file).items() if v} if file else {}
    out = {}
    for name in names:
        if env.get(name):
            out[name] = Setting(env[name], "the environment")
        elif name in values:
            out[name] = Setting(values[name], f"{FILE_SOURCE} {file}:{_line(file, name)}")
    return out


def _line(file: Path, name: str) -> int:
    pattern = re.compile(rf"^\s*(export\s+)?{re.escape(name)}\s*=")
    for number, line in enumerate(file.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if pattern.match(line):
            return number
    return 0
