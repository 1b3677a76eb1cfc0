"""Tier 2: KServe v2 against the real engine (Gemma), with clients nobody here wrote: tritonclient.http
(JSON and binary tensors) and tritonclient.grpc (infer and streaming), and the anyserve document's own
curl lines and request bodies."""
from __future__ import annotations

import base64
import json
import queue
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from launcher.net import free_ports
from launcher.testing.launched import Launched, wait_for
from tests.e2e.netns import in_namespace, network_namespace

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "The history of the printing press begins"


@pytest.fixture(scope="module")
def served(tmp_path_factory, built, gemma):
    tmp = tmp_path_factory.mktemp("kserve")
    port, grpc_port = next(free_ports()), next(free_ports())
    cfg = tmp / "kserve.yaml"
    cfg.write_text(f"model: embedded:gemma3-270m\nmodel_alias: gemma\nn_ctx: 4096\nn_parallel: 2\nport: {port}\n"
                   f"gateway: {{grpc_port: {grpc_port}}}\n")
    run = Launched(["--config", str(cfg)], f"http://127.0.0.1:{port}", tmp / "launch.log", cwd=str(ROOT))
    run.wait_ready()
    yield run, f"127.0.0.1:{port}", f"127.0.0.1:{grpc_port}"
    run.stop()
    assert run.leftovers() == []


def inputs(module, prompt: str, max_tokens: int, binary: bool = False):
    made = []
    for name, datatype, value in (("prompt", "BYTES", np.array([prompt.encode()], dtype=object)),
                                  ("max_tokens", "INT64", np.array([max_tokens], dtype=np.int64)),
                                  ("temperature", "FP32", np.array([0.0], dtype=np.float32))):
        tensor = module.InferInput(name, [1], datatype)
        if module is httpclient:
            tensor.set_data_from_numpy(value, binary_data=binary)
        else:
            tensor.set_data_from_numpy(value)
        made.append(tensor)
    return made


def text_of(value) -> str:
    return value.decode() if isinstance(value, bytes) else value  # JSON data comes back as str, binary as bytes


def texts(result) -> tuple[str, str]:
    return text_of(result.as_numpy("text_output")[0]), text_of(result.as_numpy("finish_reason")[0])


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_tritonclient_http_infer(served, binary):
    _, http_address, _ = served
    client = httpclient.InferenceServerClient(http_address)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("gemma")
    assert {i["name"] for i in client.get_model_metadata("gemma")["inputs"]} >= {"prompt", "max_tokens"}
    outputs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in ("text_output", "finish_reason")]
    text, reason = texts(client.infer("gemma", inputs(httpclient, PROMPT, 12, binary), outputs=outputs))
    assert text.strip() and reason == "length"  # 12 tokens asked, 12 given: the limit, not a stop


def test_tritonclient_grpc_infer_and_stream_agree_at_temperature_0(served):
    _, _, grpc_address = served
    client = grpcclient.InferenceServerClient(grpc_address)
    assert client.is_server_live() and client.is_model_ready("gemma")
    whole, reason = texts(client.infer("gemma", inputs(grpcclient, PROMPT, 16)))
    assert reason == "length"
    results: queue.Queue = queue.Queue()
    client.start_stream(callback=lambda result, error: results.put((result, error)))
    client.async_stream_infer("gemma", inputs(grpcclient, PROMPT, 16), request_id="s1")
    pieces, final = [], None
    while final is None:
        result, error = results.get(timeout=60)
        assert error is None, error
        response = result.get_response()
        pieces.append(text_of(result.as_numpy("text_output")[0]))
        if response.parameters["triton_final_response"].bool_param:
            final = text_of(result.as_numpy("finish_reason")[0])
    client.stop_stream()
    assert "".join(pieces) == whole and final == "length" and len(pieces) > 2


def test_rest_infer_stream_concatenates_to_the_non_streamed_text(served):
    run, _, _ = served
    body = {"inputs": [{"name": "prompt", "datatype": "BYTES", "shape": [1], "data": [PROMPT]},
                       {"name": "max_tokens", "datatype": "INT64", "shape": [1], "data": [16]},
                       {"name": "temperature", "datatype": "FP32", "shape": [1], "data": [0.0]}]}
    whole = httpx.post(run.url + "/v2/models/gemma/infer", json=body, timeout=60).json()
    events = [json.loads(ln[6:]) for ln in httpx.post(run.url + "/v2/models/gemma/infer_stream", json=body,
                                                      timeout=60).text.splitlines() if ln.startswith("data: ")]
    streamed = "".join(e["infer_response"]["outputs"][0]["data"][0] for e in events)
    assert streamed == whole["outputs"][0]["data"][0]
    assert events[-1]["infer_response"]["outputs"][1]["data"] == ["length"]
    assert whole["parameters"]["completion_tokens"] == 16


def test_the_documents_contents_request_body(served):
    run, _, _ = served
    body = {"model_name": "gemma", "inputs": [  # 000's 请求格式, the model name aside
        {"name": "prompt", "datatype": "BYTES", "shape": [1], "contents": {"bytes_contents": ["SGVsbG8sIHdvcmxk"]}},
        {"name": "max_tokens", "datatype": "INT64", "shape": [1], "contents": {"int64_contents": [256]}},
        {"name": "temperature", "datatype": "FP32", "shape": [1], "contents": {"fp32_contents": [0.7]}}]}
    answer = httpx.post(run.url + "/v2/models/gemma/infer", json=body, timeout=120).json()
    [text] = answer["outputs"][0]["contents"]["bytes_contents"]
    assert base64.b64decode(text).decode().strip()


def slots_busy(run) -> int:
    engine = run.models()["engines"][0]["url"]
    return sum(1 for s in httpx.get(engine + "/slots").json() if s.get("is_processing"))


def test_a_client_gone_from_either_stream_frees_its_slot(served):
    run, _, grpc_address = served
    body = {"inputs": [{"name": "prompt", "datatype": "BYTES", "shape": [1], "data": [PROMPT]},
                       {"name": "max_tokens", "datatype": "INT64", "shape": [1], "data": [3000]}],
            "parameters": {"ignore_eos": True}}
    with httpx.stream("POST", run.url + "/v2/models/gemma/infer_stream", json=body, timeout=60) as r:
        for i, _ in enumerate(r.iter_lines()):
            if i == 4:
                assert slots_busy(run) == 1
                break
    assert wait_for(lambda: slots_busy(run) == 0, 5, 0.05)
    client = grpcclient.InferenceServerClient(grpc_address)
    seen: queue.Queue = queue.Queue()
    client.start_stream(callback=lambda result, error: seen.put(result))
    client.async_stream_infer("gemma", inputs(grpcclient, PROMPT, 3000), request_id="long",
                              parameters={"ignore_eos": True})
    seen.get(timeout=60)
    assert slots_busy(run) == 1
    client.stop_stream(cancel_requests=True)
    assert wait_for(lambda: slots_busy(run) == 0, 5, 0.05)


def test_metrics_count_requests_by_protocol(served):
    run, _, _ = served
    text = httpx.get(run.url + "/metrics").text
    for protocol, endpoint in (("kserve", "infer"), ("kserve", "infer_stream"), ("grpc", "ModelInfer"),
                               ("grpc", "ModelStreamInfer")):
        assert f'endpoint="{endpoint}",model="gemma",protocol="{protocol}",status="200"' in text, (protocol, text)


def test_keys_guard_rest_and_grpc(tmp_path, launch):
    grpc_port = next(free_ports())
    run = launch(f"model: embedded:gemma3-270m\nmodel_alias: gemma\nn_ctx: 1024\nn_parallel: 1\nport: PORT\n"
                 f"gateway: {{grpc_port: {grpc_port}, api_key_env: KS_KEY}}\n", env={"KS_KEY": "k-9"})
    client = httpclient.InferenceServerClient(run.url.removeprefix("http://"))
    with pytest.raises(Exception, match="API key"):
        client.infer("gemma", inputs(httpclient, "Hi", 2))
    ok = client.infer("gemma", inputs(httpclient, "Hi", 2), headers={"Authorization": "Bearer k-9"})
    assert texts(ok)[0] is not None
    g = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
    assert g.is_server_live()  # health is public
    with pytest.raises(Exception, match="UNAUTHENTICATED|API key"):
        g.infer("gemma", inputs(grpcclient, "Hi", 2))
    assert texts(g.infer("gemma", inputs(grpcclient, "Hi", 2), headers={"authorization": "Bearer k-9"}))[1]


DOCUMENT_CURLS = [  # 000, 使用 curl: exactly as written
    ["curl", "-X", "POST", "http://localhost:8000/v2/models/llama-7b/infer", "-H", "Content-Type: application/json",
     "-d", '{\n    "inputs": [\n      {\n        "name": "prompt",\n        "datatype": "BYTES",\n        "shape": [1],\n'
           '        "data": ["Once upon a time"]\n      }\n    ]\n  }'],
    ["curl", "-X", "POST", "http://localhost:8000/v2/models/llama-7b/infer_stream", "-H",
     "Content-Type: application/json", "-d", '{\n    "inputs": [\n      {\n        "name": "prompt",\n        '
     '"datatype": "BYTES",\n        "shape": [1],\n        "data": ["Once upon a time"]\n      }\n    ]\n  }'],
]
DRIVER = """
import runpy, subprocess, sys, json
from pathlib import Path
from launcher.testing.launched import launched
with launched(["serve", sys.argv[1], "--name", "llama-7b", "--n-ctx", "1024"], "http://127.0.0.1:8000",
              Path(sys.argv[2])):
    for argv in json.loads(sys.argv[3]):
        print(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
        print("=====")
    runpy.run_path(sys.argv[4])    # the document's AnyServeClient("localhost:8000"): gRPC, on the same port
"""


def test_the_documents_curl_lines_and_client_on_one_port(tmp_path, gemma):
    """`anyserve serve model.gguf --name llama-7b` answers on localhost:8000 both ways, as document 000 uses it:
    its curl lines (REST) and its AnyServeClient example (gRPC) against one `launch serve`, in a namespace of
    its own, with its default port (the document's)."""
    client = ROOT / "tests" / "reference_examples" / "llamacpp_client.py"
    with network_namespace("curl") as ns:
        res = subprocess.run(in_namespace(ns, [sys.executable, "-c", DRIVER, str(gemma), str(tmp_path / "log"),
                                               json.dumps(DOCUMENT_CURLS), str(client)]),
                             capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:] + (tmp_path / "log").read_text()[-2000:]
    infer, stream, generated = res.stdout.split("=====\n")
    answer = json.loads(infer)
    assert answer["model_name"] == "llama-7b" and answer["outputs"][0]["data"][0].strip()
    events = [json.loads(ln[6:]) for ln in stream.splitlines() if ln.startswith("data: ")]
    assert len(events) > 2 and all(e["error_message"] == "" for e in events)
    assert events[-1]["infer_response"]["outputs"][1]["data"][0] in ("stop", "length")
    assert len(generated.strip().splitlines()) >= 1 and generated.strip()  # infer's text, then the stream's


OPENAI_PORT_DRIVER = """
import shlex, subprocess, sys
from pathlib import Path
import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from openai import OpenAI
from launcher.testing.launched import launched
line, gemma, log = sys.argv[1:4]
# the document's model path, in this namespace's own mounts: a tmpfs on /path holding a link to Gemma
subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/path"], check=True)
Path("/path/to").mkdir()
Path("/path/to/model.gguf").symlink_to(gemma)
with launched(shlex.split(line)[1:], "http://127.0.0.1:8000", Path(log)):
    chat = OpenAI(base_url="http://localhost:8080/v1", api_key="none").chat.completions.create(
        model="my-model", messages=[{"role": "user", "content": "Say hi"}], max_tokens=8)
    print("openai on 8080:", bool(chat.choices[0].message.content))
    for module, name in ((httpclient, "http"), (grpcclient, "grpc")):
        client = module.InferenceServerClient("localhost:8000")
        prompt = module.InferInput("prompt", [1], "BYTES")
        prompt.set_data_from_numpy(np.array([b"Once upon a time"], dtype=object))
        text = client.infer("my-model", [prompt]).as_numpy("text_output")[0]
        print(f"tritonclient.{name} on 8000:", bool(text.strip()))
"""


def test_the_readmes_openai_port_line_verbatim(tmp_path, gemma):
    """anyserve's README: `anyserve serve /path/to/model.gguf --name my-model --port 8000 --openai-port 8080`
    (KServe on 8000, OpenAI on 8080), run as written but for the command name."""
    readme = ROOT.parent / "shared" / "reference" / "001_086391c8785fef4e.txt"
    if not readme.exists():
        pytest.skip("the reference documents are not beside this checkout")
    [line] = [ln for ln in readme.read_text(encoding="utf-8").splitlines()
              if ln.startswith("anyserve serve /path/to/model.gguf") and ln.endswith("--openai-port 8080")]
    made = not Path("/path").exists()
    if made:
        Path("/path").mkdir()   # a mount point; what is mounted there is the namespace's own
    try:
        with network_namespace("openai-port") as ns:
            res = subprocess.run(in_namespace(ns, [sys.executable, "-c", OPENAI_PORT_DRIVER, line, str(gemma),
                                                   str(tmp_path / "log")]),
                                 capture_output=True, text=True, cwd=ROOT, timeout=300)
    finally:
        if made:
            Path("/path").rmdir()
    assert res.returncode == 0, res.stderr[-2000:] + (tmp_path / "log").read_text()[-2000:]
    assert res.stdout.splitlines() == ["openai on 8080: True", "tritonclient.http on 8000: True",
                                       "tritonclient.grpc on 8000: True"]
