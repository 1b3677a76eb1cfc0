"""Tier 1: the KServe streams' fast path (gateway/kserve/streams.py) says exactly what the slow path says."""
from __future__ import annotations

import json

import pytest

from launcher.gateway.kserve.generation import Piece
from launcher.gateway.kserve.streams import CompletionChunks, GrpcMessages, event_template
from launcher.protocols.kserve import grpc_predict_v2_pb2 as pb
from launcher.protocols.kserve.tensors import encode_raw
from launcher.protocols.kserve.wire import set_parameters

TEXTS = ["", " hello", 'quote " and \\ backslash', "é中文🙂", "x" * 300]


def slow(model: str, rid: str, text: str, raw: bool) -> pb.ModelStreamInferResponse:
    msg = pb.ModelStreamInferResponse()
    r = msg.infer_response
    r.model_name, r.model_version, r.id = model, "1", rid
    for name, value in (("text_output", text.encode()), ("finish_reason", b"")):
        out = r.outputs.add(name=name, datatype="BYTES", shape=[1])
        if raw:
            r.raw_output_contents.append(encode_raw("BYTES", [value]))
        else:
            out.contents.bytes_contents.append(value)
    set_parameters(r.parameters, {"triton_final_response": False})
    return msg


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
@pytest.mark.parametrize("text", TEXTS)
def test_a_tokens_message_bytes_are_the_message(text, raw):
    made = GrpcMessages("gemma", "1", "req-7", raw).message(Piece(text))
    assert isinstance(made, bytes)
    assert pb.ModelStreamInferResponse.FromString(made) == slow("gemma", "req-7", text, raw)


def test_the_last_piece_is_a_message_with_the_finish_and_the_counts():
    last = GrpcMessages("gemma", "1", "", True).message(Piece("", "length", {"prompt_tokens": 3, "completion_tokens": 9}))
    params = last.infer_response.parameters
    assert params["triton_final_response"].bool_param and params["completion_tokens"].int64_param == 9


@pytest.mark.parametrize("text", TEXTS)
def test_a_token_chunk_read_on_the_fast_path_is_what_json_reads(text):
    for spacing in ((",", ":"), (", ", ": ")):   # llama-server's compact JSON, and Python's
        event = {"choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": None}], "model": "m"}
        chunk = b"data: " + json.dumps(event, separators=spacing).encode() + b"\n\n"
        chunks = CompletionChunks()
        [piece] = chunks.feed(chunk[:7]) + chunks.feed(chunk[7:])   # split anywhere, too
        assert piece.text == text and piece.finish_reason is None and chunks.tokens == 1
        [piece] = CompletionChunks().feed(chunk)
        assert piece.text == text and json.loads(piece.raw) == text
        line = event_template({"model_name": "m", "model_version": "1"}, "data")(piece)
        assert json.loads(line[6:])["infer_response"]["outputs"][0]["data"] == [text]


def test_the_finish_and_usage_chunks_take_the_slow_path():
    chunks = CompletionChunks()
    pieces = chunks.feed(b'data: {"choices":[{"text":"","index":0,"finish_reason":"stop"}],'
                         b'"usage":{"prompt_tokens":2,"completion_tokens":4}}\n\ndata: [DONE]\n\n')
    assert [(p.finish_reason, p.usage) for p in pieces] == [("stop", {"prompt_tokens": 2, "completion_tokens": 4})]
    assert chunks.done and chunks.tokens == 0
