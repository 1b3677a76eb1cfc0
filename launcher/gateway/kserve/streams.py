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
from typing import Callable

from ...protocols.kserve import grpc_predict_v2_pb2 as pb
from ...protocols.kserve.tensors import CONTENTS, encode_raw
from ...protocols.kserve.wire import set_parameters
from .generation import Piece


class CompletionChunks:
    """Split the engine's SSE bytes into pieces (a `data:` line each, a line may span chunks); `done` once
    `[DONE]` came; `tokens` counts the pieces that carried a token (not the finish or usage chunk)."""
    __slots__ = ("pending", "done", "tokens")

    def __init__(self):
        self.pending, self.done, self.tokens = b"", False, 0

    def feed(self, chunk: bytes) -> list[Piece]:
        *lines, self.pending = (self.pending + chunk).split(b"\n")
        pieces = []
        for line in lines:
            if not line.startswith(b"data: "):
                continue
            data = line[6:].rstrip(b"\r")
            if data == b"[DONE]":
                self.done = True
                continue
            event = json.loads(data.decode())  # a str skips json's encoding detection
            choices = event.get("choices")
            choice = choices[0] if choices else {}
            finish = choice.get("finish_reason")
            if choices and not finish:
                self.tokens += 1
            pieces.append(Piece(choice.get("text") or "", finish, event.get("usage")))
        return pieces


class SSERewrite:
    """The tally of a rewritten REST stream (see proxy.Tally): each engine piece becomes `render(piece)`'s
    event; an engine failure after the headers becomes `render_error(message)`'s, never a normal end."""
    __slots__ = ("chunks", "render", "render_error", "ttft")

    def __init__(self, render: Callable[[Piece], bytes], render_error: Callable[[str], dict]):
        self.chunks, self.render, self.render_error, self.ttft = CompletionChunks(), render, render_error, None

    def add(self, chunk: bytes) -> bytes:
        return b"".join([self.render(p) for p in self.chunks.feed(chunk)])

    @property
    def ended(self) -> bool:
        return self.chunks.done

    @property
    def tokens(self) -> int:
        return self.chunks.tokens

    def error_event(self, message: str, code: str) -> bytes:
        return b"data: " + json.dumps(self.render_error(message)).encode() + b"\n\n"


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
            text, reason = json.dumps(piece.text), json.dumps(piece.finish_reason or "")
        extra = ""
        if piece.usage:
            extra = (f',"parameters":{{"prompt_tokens":{int(piece.usage.get("prompt_tokens", 0))},'
                     f'"completion_tokens":{int(piece.usage.get("completion_tokens", 0))}}}')
        return (f'data: {{"error_message":"","infer_response":{{{fixed},"outputs":['
                f'{tensor("text_output", text)},{tensor("finish_reason", reason)}]{extra}}}}}\n\n').encode()
    return render


class GrpcMessages:
    """ModelStreamInfer responses for one request, copied from a template made once: outputs as the request
    sent its inputs (raw contents for tritonclient, typed contents for anyserve's client)."""

    def __init__(self, model: str, version: str, request_id: str, raw: bool):
        self.raw = raw
        self.template = pb.ModelStreamInferResponse()
        r = self.template.infer_response
        r.model_name, r.model_version, r.id = model, version, request_id
        for name in ("text_output", "finish_reason"):
            r.outputs.add(name=name, datatype="BYTES", shape=[1])

    def message(self, piece: Piece) -> pb.ModelStreamInferResponse:
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
