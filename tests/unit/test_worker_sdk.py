"""Tier 1: the worker SDK — the decorator, the message objects as the anyserve documents build them,
one worker process's KServe answers (in-process), and the REST <-> protobuf conversions."""
import base64
import json

import pytest
from fastapi.testclient import TestClient

from launcher.protocols.kserve import grpc_predict_v2_pb2 as pb
from launcher.protocols.kserve.wire import json_request, proto_request, proto_response
from launcher.worker import App, Context, ModelInferRequest, ModelInferResponse, ModelStreamInferResponse
from launcher.worker.messages import as_response, response_to_rest
from launcher.worker.server import create_worker_app

TEXT = {"name": "text", "datatype": "BYTES", "shape": [1], "data": ["hi there"]}


def make_app() -> App:
    app = App()

    @app.capability(type="echo")
    def echo(request: ModelInferRequest) -> ModelInferResponse:
        response = ModelInferResponse(model_name=request.model_name, id=request.id)
        for inp in request.inputs:
            response.add_output(name=f"output_{inp.name}", datatype=inp.datatype, shape=inp.shape).contents = \
                inp.contents
        return response

    @app.capability(type="boom")
    def boom(request):
        raise ValueError("no luck")

    @app.capability(type="text")
    def text(request, context: Context):
        return f"{context.capability['type']}: {request.get_input('text').bytes_contents[0].decode()}"

    @app.capability(type="words", stream=True)
    def words(request, context, stream):
        for word in request.get_input("text").bytes_contents[0].decode().split():
            response = ModelInferResponse(model_name=request.model_name, id=request.id)
            response.add_output(name="word", datatype="BYTES", shape=[1], bytes_contents=[word.encode()])
            stream.send(ModelStreamInferResponse(infer_response=response))
        raise RuntimeError("after two words")
    return app


def test_handlers_are_found_by_capability_and_kind():
    app = make_app()
    assert app.capabilities() == [{"type": "echo"}, {"type": "boom"}, {"type": "text"}, {"type": "words"}]
    assert app.find({"type": "echo"}, stream=False).func.__name__ == "echo"
    assert app.find({"type": "words"}, stream=False).stream  # only a streaming one: the caller is told
    assert app.find({"type": "nope"}, stream=False) is None
    assert [h.takes_context for h in app.handlers] == [False, False, True, True]


def test_responses_built_as_the_llama_cpp_document_builds_them():
    response = ModelInferResponse(model_name="llama-7b", id="request-123", outputs=[
        ModelInferResponse.InferOutputTensor(name="text_output", datatype="BYTES", shape=[1],
                                             contents=ModelInferResponse.InferTensorContents(
                                                 bytes_contents=["Generated text".encode("utf-8")]))])
    body, blob = response_to_rest(response)
    assert body == {"model_name": "llama-7b", "id": "request-123", "outputs": [
        {"name": "text_output", "datatype": "BYTES", "shape": [1],
         "contents": {"bytes_contents": ["R2VuZXJhdGVkIHRleHQ="]}}]} and blob == b""   # the document's own bytes
    assert response.outputs["text_output"] == "Generated text" and response["text_output"] == [b"Generated text"]
    assert response_to_rest(response, "data")[0]["outputs"][0]["data"] == ["Generated text"]
    assert as_response("plain", ModelInferRequest("m", "1")).outputs["text_output"] == "plain"
    assert as_response({"n": [1, 2]}, ModelInferRequest("m")).outputs["n"] == [1, 2]
    with pytest.raises(TypeError, match="return a ModelInferResponse"):
        as_response(3.5, ModelInferRequest("m"))


def worker() -> TestClient:
    return TestClient(create_worker_app(make_app(), "test", call=None, threads=2))


def test_a_worker_answers_in_the_form_it_was_asked():
    with worker() as client:
        data = client.post("/v2/models/echo/infer", json={"id": "7", "inputs": [TEXT]}).json()
        assert data["id"] == "7" and data["outputs"][0]["data"] == ["hi there"]
        contents = {"name": "text", "datatype": "BYTES", "shape": [1],
                    "contents": {"bytes_contents": [base64.b64encode(b"\x00\xff").decode()]}}
        data = client.post("/v2/models/echo/infer", json={"inputs": [contents]}).json()
        assert data["outputs"][0]["contents"] == {"bytes_contents": ["AP8="]}
        resp = client.post("/v2/models/echo/infer", json={"inputs": [TEXT], "parameters": {"binary_data_output": True}})
        head = int(resp.headers["inference-header-content-length"])
        assert resp.content[head:] == b"\x08\x00\x00\x00hi there"
        assert client.get("/health").json()["capabilities"][0] == {"type": "echo"}


def test_a_handler_that_raises_fails_its_request_only():
    with worker() as client:
        resp = client.post("/v2/models/boom/infer", json={"inputs": [TEXT]})
        assert resp.status_code == 500 and resp.json() == {"error": "handler boom raised ValueError: no luck"}
        assert client.post("/v2/models/echo/infer", json={"inputs": [TEXT]}).status_code == 200
        resp = client.post("/v2/models/words/infer", json={"inputs": [TEXT]})
        assert resp.status_code == 400 and "infer_stream" in resp.json()["error"]
        resp = client.post("/v2/models/nope/infer", json={"inputs": [TEXT]})
        assert resp.status_code == 404 and "{'type': 'echo'}" in resp.json()["error"]


def test_streams_send_as_they_go_and_end_with_the_handlers_error():
    with worker() as client:
        events = [json.loads(line[6:]) for line in client.post("/v2/models/words/infer_stream",
                                                                json={"inputs": [TEXT]}).text.splitlines()
                  if line.startswith("data: ")]
        assert [e["infer_response"]["outputs"][0]["data"] for e in events[:2]] == [["hi"], ["there"]]
        assert events[2] == {"error_message": "handler words raised RuntimeError: after two words",
                             "infer_response": None}
        # a plain handler streams its one answer; the query header picks the handler
        text = client.post("/v2/models/anything/infer_stream", json={"inputs": [TEXT]},
                           headers={"x-capability-query": '{"type": "text"}'}).text
        assert json.loads(text.split("data: ", 1)[1])["infer_response"]["outputs"][0]["data"] == ["text: hi there"]


def test_rest_and_protobuf_forms_convert_both_ways():
    body = {"id": "9", "parameters": {"lang": "zh", "n": 2},
            "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "contents": {"bytes_contents": ["aGk="]}},
                       {"name": "x", "datatype": "FP32", "shape": [2], "contents": {"fp32_contents": [0.5, 1.5]}}],
            "outputs": [{"name": "y"}]}
    message = proto_request("m", body)
    assert message.inputs[0].contents.bytes_contents == [b"hi"] and message.parameters["n"].int64_param == 2
    assert json_request(message) == body
    answer = {"model_name": "m", "id": "9", "outputs": [{"name": "y", "datatype": "INT64", "shape": [2],
                                                          "data": [3, 4]}]}
    typed = proto_response(answer, raw=False)
    assert list(typed.outputs[0].contents.int64_contents) == [3, 4]
    raw = proto_response(answer, raw=True)
    assert raw.raw_output_contents[0] == (3).to_bytes(8, "little") + (4).to_bytes(8, "little")
    assert isinstance(raw, pb.ModelInferResponse)
