"""Exceptions raised by launcher's library code. Only `cli.py` turns them into exit codes.

LauncherError            anything the user can fix; printed without a traceback
 +-- ConfigError         the config has problems (exit 2); carries every Problem
 +-- BuildError          llama.cpp could not be built or failed its smoke test
 +-- PlanError           the config is valid but cannot run here (missing binary, no devices)
 +-- StartError          a process did not come up (port taken, crashed while loading)
"""
from __future__ import annotations


class LauncherError(Exception):
    exit_code = 1


class ConfigError(LauncherError):
    exit_code = 2

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(p.format() for p in self.problems))


class BuildError(LauncherError):
    def __init__(self, message: str, log_tail: str = "", log_path: str = ""):
        self.log_tail, self.log_path = log_tail, log_path
        super().__init__(message)


class PlanError(LauncherError):
    pass


class StartError(LauncherError):
    pass
