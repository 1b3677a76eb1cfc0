"""KServe streams on the fast path: the engine's `/v1/completions` SSE chunks turned into KServe events in the
upstream socket's callback, with no task switch and no async generator per token.

REST (`infer_stream`, `generate_stream`): `SSERewrite` is the tally `proxy.pipe_sse` writes through, so each
event goes straight to the client's socket like an OpenAI stream's bytes. gRPC (`ModelStreamInfer`): the
callback puts finished messages on the call's queue, made from a per-request template (`GrpcMessages`).
Measured with `launch bench cost --fake --delay 0.002` (README, "Speed").
"""
from __future__ import annotations

import base64
import json
import re
from typing import Callable

from ...protocols.kserve import grpc_predict_v2_pb2 as pb
from ...protocols.kserve.tensors import CONTENTS, encode_raw
from ...protocols.kserve.wire import set_parameters
from .generation import Piece

_TEXT = re.compile(r'"text":\s*"')
_NO_FINISH = re.compile(r'"finish_reason":\s*null')
_string = json.decoder.scanstring   # C: one JSON string literal at an index


def _token(data: str) -> Piece | None:
    """The common chunk (one token, no finish, no usage), read without decoding it all: its text literal is
    found and kept as it is (an SSE event can carry it unchanged). None: decode the whole chunk."""
    if '"usage"' in data or ('"finish_reason":null' not in data and not _NO_FINISH.search(data)):
        return None
    found = _TEXT.search(data)
    if found is None:
        return None
    text, end = _string(data, found.end())
    return Piece(text, None, None, data[found.end() - 1:end])


class CompletionChunks:
    """Split the engine's SSE bytes into pieces (a `data:` line each, a line may span chunks); `done` once
    `[DONE]` came; `tokens` counts the pieces that carried a token (not the finish or usage chunk)."""
    __slots__ = ("pending", "done", "tokens", "usage")

    def __init__(self):
        self.pending, self.done, self.tokens = b"", False, 0
        self.usage: tuple[int, int] | None = None   # (prompt, completion), from the engine's last chunk

    def feed(self, chunk: bytes) -> list[Piece]:
        if not self.pending and chunk.startswith(b"data: {") and chunk.endswith(b"}\n\n") \
                and chunk.count(b"\n") == 2:   # the usual chunk: one whole event
            piece = _token(chunk[6:-2].decode())
            if piece is not None:
                self.tokens += 1
                return [piece]
        *lines, self.pending = (self.pending + chunk).split(b"\n")
        pieces = []
        for line in lines:
            if not line.startswith(b"data: "):
                continue
            data = line[6:].rstrip(b"\r").decode()
            if data == "[DONE]":
                self.done = True
                continue
            piece = _token(data)
            if piece is None:
                event = json.loads(data)
                choices = event.get("choices")
                choice = choices[0] if choices else {}
                piece = Piece(choice.get("text") or "", choice.get("finish_reason"), event.get("usage"))
                if piece.usage:
                    self.usage = (int(piece.usage.get("prompt_tokens", 0)), int(piece.usage.get("completion_tokens", 0)))
                if not choices or piece.finish_reason:
                    pieces.append(piece)
                    continue
            self.tokens += 1
            pieces.append(piece)
        return pieces


class SSERewrite:
    """The tally of a rewritten REST stream (see proxy.Tally): each engine piece becomes `render(piece)`'s
    event; an engine failure after the headers becomes `render_error(message)`'s, never a normal end."""
    __slots__ = ("chunks", "render", "render_error", "ttft")  # and the tally's `usage`, from `chunks`

    def __init__(self, render: Callable[[Piece], bytes], render_error: Callable[[str], dict]):
        self.chunks, self.render, self.render_error, self.ttft = CompletionChunks(), render, render_error, None

    def add(self, chunk: bytes) -> bytes:
        pieces = self.chunks.feed(chunk)
        return self.render(pieces[0]) if len(pieces) == 1 else b"".join([self.render(p) for p in pieces])

    @property
    def ended(self) -> bool:
        return self.chunks.done

    @property
    def tokens(self) -> int:
        return self.chunks.tokens

    @property
    def usage(self) -> tuple[int, int] | None:
        return self.chunks.usage

    def error_event(self, message: str, code: str) -> bytes:
        return b"data: " + json.dumps(self.render_error(message)).encode() + b"\n\n"


REASONS = {None: '""', "stop": '"stop"', "length": '"length"'}


def event_template(head: dict, form: str) -> Callable[[Piece], bytes]:
    """infer_stream's event as bytes: the request's fixed fields rendered once, the text and finish reason
    (and the token counts on the last event) filled in per piece."""
    def tensor(name: str, encoded: str) -> str:
        key = f'"contents":{{"{CONTENTS["BYTES"]}":[{encoded}]}}' if form == "contents" else f'"data":[{encoded}]'
        return f'{{"name":"{name}","datatype":"BYTES","shape":[1],{key}}}'
    fixed = json.dumps(head, separators=(",", ":"))[1:-1]

    def render(piece: Piece) -> bytes:
        if form == "contents":
            text = json.dumps(base64.b64encode(piece.text.encode()).decode())
            reason = json.dumps(base64.b64encode((piece.finish_reason or "").encode()).decode())
        else:
            text = piece.raw or json.dumps(piece.text)
            reason = REASONS.get(piece.finish_reason) or json.dumps(piece.finish_reason or "")
        extra = ""
        if piece.usage:
            extra = (f',"parameters":{{"prompt_tokens":{int(piece.usage.get("prompt_tokens", 0))},'
                     f'"completion_tokens":{int(piece.usage.get("completion_tokens", 0))}}}')
        return (f'data: {{"error_message":"","infer_response":{{{fixed},"outputs":['
                f'{tensor("text_output", text)},{tensor("finish_reason", reason)}]{extra}}}}}\n\n').encode()
    return render


class GrpcMessages:
    """ModelStreamInfer responses for one request: outputs as the request sent its inputs (raw contents for
    tritonclient, typed contents for anyserve's client).

    A token's response is written as protobuf bytes from parts encoded once per request (protobuf reads fields
    in any order): building the message costs 2.3 µs a token, this 0.5 µs. The last piece, which carries the
    finish reason and the token counts, is built as a message. `message` returns either; both are checked
    equal in tests/unit/test_kserve_streams.py."""

    def __init__(self, model: str, version: str, request_id: str, raw: bool):
        self.raw = raw
        self.template = pb.ModelStreamInferResponse()
        r = self.template.infer_response
        r.model_name, r.model_version, r.id = model, version, request_id
        for name in ("text_output", "finish_reason"):
            r.outputs.add(name=name, datatype="BYTES", shape=[1])
        head = pb.ModelInferResponse(model_name=model, model_version=version, id=request_id)
        set_parameters(head.parameters, {"triton_final_response": False})
        if raw:   # the outputs' descriptions and the parameters are fixed; the tensors' bytes vary
            self.fixed = head.SerializeToString() + b"".join(_field(5, o.SerializeToString()) for o in r.outputs)
            self.no_reason = _field(6, encode_raw("BYTES", [b""]))
        else:
            self.fixed = head.SerializeToString()
            self.reason_tensor = _field(5, _tensor("finish_reason", b""))

    def message(self, piece: Piece):
        if piece.finish_reason is None and not piece.usage:
            text = piece.text.encode()
            if self.raw:
                inner = self.fixed + _field(6, encode_raw("BYTES", [text])) + self.no_reason
            else:
                inner = self.fixed + _field(5, _tensor("text_output", text)) + self.reason_tensor
            return _field(2, inner)
        msg = pb.ModelStreamInferResponse()
        msg.CopyFrom(self.template)
        r = msg.infer_response
        text, reason = piece.text.encode(), (piece.finish_reason or "").encode()
        if self.raw:
            r.raw_output_contents.extend((encode_raw("BYTES", [text]), encode_raw("BYTES", [reason])))
        else:
            r.outputs[0].contents.bytes_contents.append(text)
            r.outputs[1].contents.bytes_contents.append(reason)
        params = {"triton_final_response": piece.finish_reason is not None}
        if piece.usage:
            params.update(prompt_tokens=int(piece.usage.get("prompt_tokens", 0)),
                          completion_tokens=int(piece.usage.get("completion_tokens", 0)))
        set_parameters(r.parameters, params)
        return msg


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, data: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _tensor(name: str, value: bytes) -> bytes:
    """An InferOutputTensor {name, datatype BYTES, shape [1], contents.bytes_contents [value]}."""
    return (_field(1, name.encode()) + _field(2, b"BYTES") + b"\x1a\x01\x01" + _field(5, _field(8, value)))
