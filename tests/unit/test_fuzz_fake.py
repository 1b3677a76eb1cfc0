"""Tier 1: schemathesis against the gateway's own OpenAPI document, over fake engines, with keys.

Every route (OpenAI, KServe v2, management, discovery, health, metrics): no 5xx, every answer in its
documented status, media type and schema (errors in their family's envelope), schema-valid requests
accepted, 405s with Allow, keys enforced where documented. Bounded by a fixed seed and example count
(FUZZ_EXAMPLES, default 25 per operation; the README's figures use 100).
Two gateways: the management calls that stop or switch models would otherwise turn the first run's
requests into legitimate 503s. `/register`, `/logs/stream` and `/api/events` answer endless streams by design (test_discovery_fake, test_logs_fake).
Schema-invalid input is not required to be refused (negative_data_rejection): OpenAI fields the gateway
does not read are passed to the engine, which answers for them.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.harness import gateway
from tests.fakes.management import make_manager, models_folder

ST = shutil.which("st", path=str(Path(sys.executable).parent))
MUTATING = r"^/api/v1/(model/(switch|stop)|benchmark)"


def fuzz(url: str, *selection: str, examples: int) -> subprocess.CompletedProcess:
    return subprocess.run([ST, "run", url + "/openapi.json", "-H", "Authorization: Bearer k1", "--checks", "all",
                           "--exclude-checks", "negative_data_rejection", "--max-examples", str(examples),
                           "--workers", "1", "--seed", "7", "--no-color", *selection],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(ST is None, reason="schemathesis is in the test extra")
@pytest.mark.parametrize("selection", [
    ["--exclude-path", "/register", "--exclude-path-regex", f"{MUTATING}|^/logs/stream|^/api/events"],
    ["--include-path-regex", "^/api/v1/"]], ids=["serving-routes", "management-routes"])
def test_every_route_survives_fuzzing_within_its_documented_schema(tmp_path, monkeypatch, selection):
    monkeypatch.setenv("FUZZ_ADMIN", "k1")
    models = models_folder(tmp_path)
    with gateway(tmp_path, keys=("k1",), extra="gateway: {admin_key_env: FUZZ_ADMIN}\n",
                 manager=make_manager(tmp_path, models)) as gw:
        res = fuzz(gw.url, *selection, examples=int(os.environ.get("FUZZ_EXAMPLES", 25)))
    summary = res.stdout[res.stdout.rfind("SUMMARY"):]
    assert res.returncode == 0 and "Failures:" not in summary, res.stdout[-6000:]
    selected = int(summary.split("Selected:")[1].split("/")[0])
    assert selected >= 7 and f"Tested: {selected}" in summary, summary  # every selected route was reached
