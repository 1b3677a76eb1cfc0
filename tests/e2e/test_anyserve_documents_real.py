"""Tier 2: the anyserve documents' worker examples, run as they are written but for the import line,
each inside a network namespace of its own so the ports they hard-code (8000, 8080) are ours:
the README's echo, factory (`run myapp:create_app --factory --port 8000 --workers 2`) and discovery client,
and the llama.cpp document's user-written worker and its AnyServeClient example."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.netns import in_namespace, network_namespace

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "reference"
EXAMPLES = ROOT / "tests" / "reference_examples"

README_DRIVER = """
import runpy, sys
from pathlib import Path
import httpx
from launcher.testing.launched import launched
from launcher.worker import Client
logs, examples = Path(sys.argv[1]), sys.argv[2]
with launched(["run", "examples.basic.app:app", "--port", "8080"], "http://127.0.0.1:8080", logs / "basic.log"):
    found = runpy.run_path(examples + "/anyserve_client.py")
    print("client:", found["result"].outputs["output_text"])
with launched(["run", "myapp:create_app", "--factory", "--port", "8000", "--workers", "2"], "http://127.0.0.1:8000",
              logs / "factory.log", cwd=examples):
    [worker] = httpx.get("http://127.0.0.1:8000/registry").json()["local"]
    print("factory processes:", len({p["pid"] for p in worker["processes"]}))
    with Client(endpoint="http://127.0.0.1:8000") as client:
        print("factory answer:", client.infer("inference", {"x": [1]})["answer"])
"""


def run_in_namespace(hint: str, driver: str, *args: str) -> subprocess.CompletedProcess:
    with network_namespace(hint) as ns:
        return subprocess.run(in_namespace(ns, [sys.executable, "-c", driver, *args]), capture_output=True,
                              text=True, cwd=ROOT, timeout=600)


def test_anyserve_readme_examples(tmp_path, built):
    res = run_in_namespace("anyserve", README_DRIVER, str(tmp_path), str(EXAMPLES))
    logs = "".join(p.read_text()[-1500:] for p in tmp_path.glob("*.log"))
    assert res.returncode == 0, res.stderr[-3000:] + logs
    assert res.stdout.splitlines() == ["client: hello", "factory processes: 2", "factory answer: [42]"]


LLAMACPP_CONFIG = """port: 8000
workers:
  - app: llamacpp_user_worker:app
    path: EXAMPLES
    threads: 1
  - app: launcher.worker.builtins.llamacpp:create_app
    factory: true
    name: llama-7b
    threads: 1
    env: {LAUNCHER_LLAMACPP_MODEL: "embedded:gemma3-270m", LAUNCHER_LLAMACPP_NAME: llama-7b}
"""
LLAMACPP_DRIVER = """
import runpy, sys
from pathlib import Path
from launcher.testing.launched import launched
from launcher.worker import Client
config, client_example, log = sys.argv[1:4]
with launched(["--config", config], "http://127.0.0.1:8000", Path(log)):
    runpy.run_path(client_example)          # the document's client: gRPC localhost:8000, model llama-7b
    print()
    with Client(endpoint="http://127.0.0.1:8000") as client:   # the user-written worker's capability (REST)
        answer = client.infer("completion", {"prompt": ["Once upon a time"]}, capability={"model": "my-model"})
        print("my-model:", bool(answer.outputs["text_output"].strip()))
"""


def test_llama_cpp_document_user_worker_and_client(tmp_path, built, gemma):
    cfg = tmp_path / "llamacpp.yaml"
    cfg.write_text(LLAMACPP_CONFIG.replace("EXAMPLES", str(EXAMPLES)))
    res = run_in_namespace("llamacpp", LLAMACPP_DRIVER, str(cfg), str(EXAMPLES / "llamacpp_client.py"),
                           str(tmp_path / "launch.log"))
    assert res.returncode == 0, res.stderr[-3000:] + (tmp_path / "launch.log").read_text()[-3000:]
    *generated, last = res.stdout.splitlines()
    assert last == "my-model: True"
    assert "".join(generated).strip()  # the non-streamed text, then the streamed one


# --- the copies are the documents' code --------------------------------------------------------

IMPORTS = [("from anyserve.worker.client import", "from launcher.worker.client import"),
           ("from anyserve.builtins.llamacpp import LlamaCppConfig\n",
            "from launcher.worker.builtins.llamacpp import LlamaCppConfig\n"),
           ("from anyserve.client import", "from launcher.worker.client import"),
           ("from anyserve.builtins.llamacpp import LlamaCppEngine",
            "from launcher.worker.builtins.llamacpp import LlamaCppEngine, extract_prompt"),
           ("from anyserve import", "from launcher.worker import"),
           ('LlamaCppEngine(model_path="/models/model.gguf")', "LlamaCppEngine(model_path=MODEL_PATH)")]


def blocks(document: str, after: str | None = None) -> list[str]:
    text = (REFERENCE / document).read_text(encoding="utf-8")
    if after:
        text = text.split(after, 1)[1]
    return [b.split("```", 1)[0] for b in re.split(r"```python\n", text)[1:]]


def as_launcher(code: str) -> str:
    for old, new in IMPORTS:
        code = code.replace(old, new)
    return code


@pytest.mark.parametrize("document, index, copy, after", [
    ("001_086391c8785fef4e.txt", 0, "examples/basic/app.py", None),
    ("001_086391c8785fef4e.txt", 1, "tests/reference_examples/myapp.py", None),
    ("001_086391c8785fef4e.txt", 2, "tests/reference_examples/anyserve_client.py", None),
    ("001_086391c8785fef4e.txt", 3, "examples/pipeline/app.py", None),
    ("000_af5a0d70aa97a134.txt", 0, "tests/reference_examples/llamacpp_user_worker.py", None),
    ("000_af5a0d70aa97a134.txt", 0, "tests/reference_examples/llamacpp_client.py", "### 使用 anyserve 客户端"),
    ("000_af5a0d70aa97a134.txt", 0, "tests/unit/test_llamacpp_config_document.py", "### 单元测试"),
], ids=["echo", "factory", "client", "context.call", "user-worker", "anyserve-client", "config-unit-tests"])
def test_the_copies_are_the_documents_code(document, index, copy, after):
    if not REFERENCE.exists():
        pytest.skip("the reference documents are not beside this checkout")
    code = as_launcher(blocks(document, after)[index]).strip()
    assert code in (ROOT / copy).read_text(encoding="utf-8")
