import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


@pytest.fixture
def run_launch():
    """Run the real `launch` CLI in a subprocess; returns CompletedProcess."""
    import subprocess

    def run(*args, env=None, timeout=120):
        full_env = dict(os.environ, **(env or {}))
        return subprocess.run([sys.executable, "-m", "launcher", *args], capture_output=True, text=True,
                              cwd=ROOT, env=full_env, timeout=timeout)
    return run
