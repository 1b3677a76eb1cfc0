"""The /api/v1 service over fake engines and a fake llama-bench, and a models folder to manage, for
tier-1 tests of the management API (and of everything that must hold for it: fuzzing, auth)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from launcher.gateway.manage.manager import ModelManager
from tests.fakes.harness import fake_plan
from tests.unit.gguf_fixture import write_tiny_gguf

FAKE_BENCH = """#!{python}
import json, sys, time
time.sleep(float({delay}))
print(json.dumps([{{"n_prompt": 16, "n_gen": 0, "avg_ts": 100.0, "stddev_ts": 1.0, "n_threads": 2,
                   "samples_ts": [99, 101], "model_type": "fake", "backends": "CPU", "n_gpu_layers": 0,
                   "argv": sys.argv[1:]}}]))
"""


def make_manager(tmp_path: Path, models_dir: Path, delay: float = 0.0, flags: tuple[str, ...] = ()):
    """The /api/v1 service over fake engines (`flags` for the ones it switches to) and a fake llama-bench, as a
    factory for the harness."""
    bench = tmp_path / "llama-bench"
    bench.write_text(FAKE_BENCH.format(python=sys.executable, delay=delay))
    bench.chmod(0o755)

    def spec_for(path, settings, template):
        from launcher.config.source import Source
        from launcher.validate import validate_source
        doc = {"model": path, "engine": {"start_timeout": 20}, **settings}
        return validate_source(Source("<switch request>", doc)).config.models[0]

    return lambda deployment, pool: ModelManager(deployment, pool, [str(models_dir)], spec_for,
                                                 lambda spec: fake_plan(spec.name, list(flags)), str(bench))


def models_folder(tmp_path: Path) -> Path:
    """tiny.gguf, a non-model, a model linked in from a store elsewhere, and a GGUF outside the folder."""
    d = tmp_path / "models"
    d.mkdir()
    write_tiny_gguf(d / "tiny.gguf")
    (d / "notes.txt").write_text("not a model")
    store = tmp_path / "store"  # a model store elsewhere, linked into models_dir (as HF caches are)
    store.mkdir()
    write_tiny_gguf(store / "blob-1234")
    os.symlink(store / "blob-1234", d / "linked.gguf")
    (tmp_path / "secret.gguf").write_bytes(b"GGUF")
    return d
