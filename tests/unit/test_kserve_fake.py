"""Tier 1: KServe v2 over REST in front of the fake engine: every tensor form, batches, streams, generate,
errors in KServe's envelope, defaults. The real engine and real clients (tritonclient) are in tier 2."""
import base64
import json
import struct

import httpx
import pytest

from tests.fakes.harness import gateway

PROMPT = {"name": "prompt", "datatype": "BYTES", "shape": [1], "data": ["Once upon a time"]}


def sse_json(text: str) -> list[dict]:
    return [json.loads(ln[6:]) for ln in text.splitlines() if ln.startswith("data: ")]


def outputs(answer: dict) -> dict:
    return {o["name"]: o for o in answer["outputs"]}


def test_infer_with_json_data_answers_text_finish_reason_and_token_counts(tmp_path):
    with gateway(tmp_path, ["--tokens", "4"]) as gw:
        r = httpx.post(gw.url + "/v2/models/fake/infer", json={"id": "req-1", "inputs": [PROMPT]})
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["model_name"] == "fake" and answer["id"] == "req-1" and answer["model_version"] == "1"
        out = outputs(answer)
        assert out["text_output"] == {"name": "text_output", "datatype": "BYTES", "shape": [1],
                                      "data": ["t0 t1 t2 t3 "]}
        assert out["finish_reason"]["data"] == ["length"]
        assert answer["parameters"] == {"prompt_tokens": 3, "completion_tokens": 4}


def test_the_documents_contents_form_in_and_out(tmp_path):
    body = {"model_name": "fake", "inputs": [
        {"name": "prompt", "datatype": "BYTES", "shape": [1], "contents": {"bytes_contents": ["SGVsbG8sIHdvcmxk"]}},
        {"name": "max_tokens", "datatype": "INT64", "shape": [1], "contents": {"int64_contents": [3]}},
        {"name": "temperature", "datatype": "FP32", "shape": [1], "contents": {"fp32_contents": [0.7]}}]}
    with gateway(tmp_path) as gw:
        answer = httpx.post(gw.url + "/v2/models/fake/infer", json=body).json()
        text = outputs(answer)["text_output"]["contents"]["bytes_contents"]
        assert [base64.b64decode(t) for t in text] == [b"t0 t1 t2 "]
        sent = gw.stats()["bodies"][-1]
        assert sent["prompt"] == "Hello, world" and sent["max_tokens"] == 3 and sent["temperature"] == 0.7


def test_a_batch_of_prompts_gives_one_output_each(tmp_path):
    with gateway(tmp_path, ["--tokens", "2"]) as gw:
        body = {"inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]}]}
        out = outputs(httpx.post(gw.url + "/v2/models/fake/infer", json=body).json())
        assert out["text_output"]["shape"] == [2] and out["text_output"]["data"] == ["t0 t1 ", "t0 t1 "]
        assert sorted(b["prompt"] for b in gw.stats()["bodies"][-2:]) == ["a", "b"]


def test_binary_tensor_data_in_and_out(tmp_path):
    head = json.dumps({"inputs": [{"name": "prompt", "datatype": "BYTES", "shape": [1],
                                   "parameters": {"binary_data_size": 4 + 5}},
                                  {"name": "max_tokens", "datatype": "INT64", "shape": [1],
                                   "parameters": {"binary_data_size": 8}}],
                       "outputs": [{"name": "text_output", "parameters": {"binary_data": True}}]}).encode()
    blob = struct.pack("<I", 5) + b"hello" + struct.pack("<q", 2)
    with gateway(tmp_path) as gw:
        r = httpx.post(gw.url + "/v2/models/fake/infer", content=head + blob,
                       headers={"Inference-Header-Content-Length": str(len(head))})
        n = int(r.headers["inference-header-content-length"])
        answer = json.loads(r.content[:n])
        [out] = answer["outputs"]  # only the output asked for
        size = out["parameters"]["binary_data_size"]
        assert r.content[n:n + size] == struct.pack("<I", 6) + b"t0 t1 "
        assert gw.stats()["bodies"][-1]["max_tokens"] == 2


def test_defaults_come_from_the_document_unless_the_config_says_otherwise(tmp_path):
    with gateway(tmp_path, ["--tokens", "1"], extra="defaults: {temperature: 0.1, stop: END}\n") as gw:
        httpx.post(gw.url + "/v2/models/fake/infer", json={"inputs": [PROMPT]})
        sent = gw.stats()["bodies"][-1]
        assert (sent["max_tokens"], sent["temperature"], sent["top_p"], sent["top_k"], sent["repeat_penalty"],
                sent["stop"]) == (256, 0.1, 0.95, 40, 1.1, ["END"])
        httpx.post(gw.url + "/v2/models/fake/infer", json={"inputs": [PROMPT], "parameters": {"max_tokens": 9}})
        assert gw.stats()["bodies"][-1]["max_tokens"] == 9


def test_infer_stream_sends_one_event_per_chunk_and_the_real_finish_reason(tmp_path):
    with gateway(tmp_path, ["--tokens", "3"]) as gw:
        r = httpx.post(gw.url + "/v2/models/fake/infer_stream", json={"id": "s", "inputs": [PROMPT]})
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_json(r.text)
        assert all(e["error_message"] == "" for e in events) and len(events) == 4
        texts = [outputs(e["infer_response"])["text_output"]["data"][0] for e in events]
        reasons = [outputs(e["infer_response"])["finish_reason"]["data"][0] for e in events]
        assert "".join(texts) == "t0 t1 t2 " and reasons == ["", "", "", "length"]
        assert events[-1]["infer_response"]["parameters"] == {"prompt_tokens": 3, "completion_tokens": 3}
        assert events[0]["infer_response"]["id"] == "s"


def test_a_stream_cut_short_ends_with_an_error_event(tmp_path):
    with gateway(tmp_path, ["--tokens", "3", "--truncate"]) as gw:
        events = sse_json(httpx.post(gw.url + "/v2/models/fake/infer_stream", json={"inputs": [PROMPT]}).text)
        assert events[-1]["error_message"] and events[-1]["infer_response"] is None


def test_generate_and_generate_stream(tmp_path):
    with gateway(tmp_path, ["--tokens", "2"]) as gw:
        r = httpx.post(gw.url + "/v2/models/fake/generate", json={"text_input": "hi", "parameters": {"max_tokens": 2}})
        assert r.json() | {} == {"model_name": "fake", "model_version": "1", "text_output": "t0 t1 ",
                                 "finish_reason": "length", "prompt_tokens": 3, "completion_tokens": 2}
        events = sse_json(httpx.post(gw.url + "/v2/models/fake/generate_stream", json={"text_input": "hi"}).text)
        assert [e["text_output"] for e in events] == ["t0 ", "t1 ", ""] and events[-1]["finish_reason"] == "length"


@pytest.mark.parametrize("body,status,fragment", [
    ({"inputs": [{"name": "max_tokens", "datatype": "BYTES", "shape": [1], "data": ["x"]}, PROMPT]}, 400,
     "'max_tokens' must be INT64"),
    ({"inputs": [{"name": "max_tokens", "datatype": "INT64", "shape": [1], "data": [5]}]}, 400, "missing input 'prompt'"),
    ({"inputs": [{"name": "prompt", "datatype": "BYTES", "shape": [2], "data": ["a"]}]}, 400, "holds 2 element(s)"),
    ({"inputs": [PROMPT | {"name": "promt"}]}, 400, "unexpected input 'promt'"),
    ({"inputs": []}, 400, "`inputs`"),
])
def test_bad_tensors_are_400_naming_the_input(tmp_path, body, status, fragment):
    with gateway(tmp_path) as gw:
        r = httpx.post(gw.url + "/v2/models/fake/infer", json=body)
        assert r.status_code == status and set(r.json()) == {"error"} and fragment in r.json()["error"]


def test_unknown_model_loading_model_and_metadata(tmp_path):
    with gateway(tmp_path, ["--load-seconds", "6"], wait_ready=False, extra="gateway: {load_timeout: 0.5}\n") as gw:
        first = httpx.post(gw.url + "/v2/models/fake/infer", json={"inputs": [PROMPT]})
        assert first.status_code == 503 and first.headers["retry-after"] and "error" in first.json()
        missing = httpx.post(gw.url + "/v2/models/nope/infer", json={"inputs": [PROMPT]})
        assert missing.status_code == 404 and "nope" in missing.json()["error"]
        meta = httpx.get(gw.url + "/v2/models/fake").json()
        assert meta["name"] == "fake" and meta["versions"] == ["1"]
        assert {"name": "max_tokens", "datatype": "INT64", "shape": [1]} in meta["inputs"]
        assert httpx.get(gw.url + "/v2").json()["extensions"] == ["binary_tensor_data", "parameters", "generate"]
        assert httpx.get(gw.url + "/v2/health/live").status_code == 200
        assert httpx.get(gw.url + "/v2/models/fake/versions/2").status_code == 404
