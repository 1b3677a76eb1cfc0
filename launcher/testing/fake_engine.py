"""A stand-in for llama-server: streams as fast as it can, or provokes on cue what a real engine cannot.

    python -m launcher.testing.fake_engine --port P [--tokens N] [--delay S] [--truncate] [--crash-after N]
        [--ignore-sigterm] [--load-seconds S] [--fail-start] [--error-status C] [--slots N]

It takes llama-server's command line (what it does not know, it ignores), so launcher runs it
through the normal path with `engine.binary` pointing at a wrapper; `launch bench overhead --fake`
measures the gateway's own cost against it, and tier-1 tests use it for faults. Raw asyncio, no
framework: its own cost per token must stay far below the gateway's. It records what it saw at
GET /stats (requests, bodies, streams the client cancelled, completions, requests sent on a connection it
was closing) and GET /slots.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections import deque

CLOSE_AFTER_STREAM = 0.02  # seconds
CONTEXT = 4096  # no answer is longer, whatever max_tokens says (llama-server stops at its context too)
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error", 503: "Service Unavailable"}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="fake_engine")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tokens", type=int, help="chunks per answer (default: the request's max_tokens, else 5)")
    p.add_argument("--delay", type=float, default=0.0, help="seconds between chunks")
    p.add_argument("--truncate", action="store_true", help="end streams without data: [DONE]")
    p.add_argument("--crash-after", type=int, default=-1, help="SIGKILL itself before chunk N")
    p.add_argument("--ignore-sigterm", action="store_true")
    p.add_argument("--load-seconds", type=float, default=0.0, help="/health answers 503 this long")
    p.add_argument("--fail-start", action="store_true", help="exit 3 at once, like a corrupt model")
    p.add_argument("--error-status", type=int, default=0, help="answer every generation with this status")
    p.add_argument("--slots", type=int, default=1)
    p.add_argument("--alias", default="fake")
    args, _ = p.parse_known_args(argv)  # llama-server's other flags (--model, --ctx-size, ...)
    return args


def chunked(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


def _sse(data: dict, event: str | None = None) -> bytes:
    return (f"event: {event}\n".encode() if event else b"") + b"data: " + json.dumps(data).encode() + b"\n\n"


# The engine path -> the kind of answer it streams: OpenAI chat or completion, Anthropic messages, the
# Responses API, or llama-server's own /completion.
KINDS = {"/v1/chat/completions": "chat", "/chat/completions": "chat", "/v1/messages": "anthropic",
         "/v1/responses": "responses", "/completion": "llama", "/infill": "llama"}


def opening(kind: str) -> bytes:
    """What a stream of this kind says before its first token."""
    if kind == "anthropic":
        return (_sse({"type": "message_start", "message": {"id": "msg_fake", "type": "message", "role": "assistant",
                                                            "content": [], "model": "fake", "stop_reason": None,
                                                            "usage": {"input_tokens": 3, "output_tokens": 0}}},
                     "message_start")
                + _sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                       "content_block_start"))
    if kind == "responses":
        return _sse({"type": "response.created", "response": {"id": "resp_fake", "object": "response",
                                                               "status": "in_progress", "output": []}},
                    "response.created")
    return b""


def final_event(kind: str, n: int) -> bytes:
    """llama-server's last event(s) of a stream: no text, the finish reason, the token counts, the end."""
    if kind == "anthropic":
        return (_sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
                + _sse({"type": "message_delta", "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
                        "usage": {"output_tokens": n}}, "message_delta")
                + _sse({"type": "message_stop"}, "message_stop"))
    if kind == "responses":
        text = "".join(f"t{i} " for i in range(n))
        return _sse({"type": "response.completed", "response": response(text, n)}, "response.completed")
    if kind == "llama":
        return _sse({"content": "", "stop": True, "tokens_predicted": n, "tokens_evaluated": 3})
    choice = {"index": 0, "delta": {}, "finish_reason": "length"} if kind == "chat" else \
        {"index": 0, "text": "", "finish_reason": "length"}
    data = {"choices": [choice], "object": "chat.completion.chunk" if kind == "chat" else "text_completion",
            "model": "fake", "usage": {"prompt_tokens": 3, "completion_tokens": n, "total_tokens": 3 + n}}
    return _sse(data) + b"data: [DONE]\n\n"


def event_template(kind: str) -> tuple[bytes, bytes]:
    """An SSE event carrying the text `t<i> ` as (before i, after i): one join per chunk, no JSON encoding."""
    if kind == "chat":
        choice = {"index": 0, "delta": {"content": "t@ "}, "finish_reason": None}
        event = _sse({"choices": [choice], "object": "chat.completion.chunk", "model": "fake"})
    elif kind == "anthropic":
        event = _sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "t@ "}},
                     "content_block_delta")
    elif kind == "responses":
        event = _sse({"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": "t@ "},
                     "response.output_text.delta")
    elif kind == "llama":
        event = _sse({"content": "t@ ", "stop": False})
    else:
        event = _sse({"choices": [{"index": 0, "text": "t@ ", "finish_reason": None}], "object": "text_completion",
                      "model": "fake"})
    head, tail = event.split(b"@")
    return head, tail


def response(text: str, n: int) -> dict:
    """A whole Responses API answer."""
    return {"id": "resp_fake", "object": "response", "status": "completed", "model": "fake",
            "output": [{"type": "message", "role": "assistant", "status": "completed",
                        "content": [{"type": "output_text", "text": text, "annotations": []}]}],
            "usage": {"input_tokens": 3, "output_tokens": n, "total_tokens": 3 + n}}


def answer(kind: str, text: str, n: int, model) -> dict:
    """A whole (non-streamed) answer of this kind."""
    if kind == "anthropic":
        return {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}], "stop_reason": "max_tokens", "stop_sequence": None,
                "usage": {"input_tokens": 3, "output_tokens": n}}
    if kind == "responses":
        return response(text, n)
    if kind == "llama":
        return {"content": text, "stop": True, "tokens_predicted": n, "tokens_evaluated": 3}
    return {"object": "chat.completion" if kind == "chat" else "text_completion", "model": model,
            "choices": [{"index": 0, "text": text, "message": {"role": "assistant", "content": text},
                         "finish_reason": "length"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": n, "total_tokens": 3 + n}}


# Routes that answer at once, without generating (what llama-server answers, in shape).
INSTANT = {"/v1/messages/count_tokens": {"input_tokens": 3}, "/tokenize": {"tokens": [1, 2, 3]},
           "/detokenize": {"content": "t0 t1"}, "/apply-template": {"prompt": "<start_of_turn>user\n"},
           "/v1/rerank": {"results": [{"index": 0, "relevance_score": 0.5}]},
           "/v1/reranking": {"results": [{"index": 0, "relevance_score": 0.5}]}}


class FakeEngine:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.born = time.monotonic()
        self.stats = {"requests": 0, "cancelled": 0, "completed": 0, "dropped": 0, "bodies": deque(maxlen=1000), "pid": os.getpid()}
        self.active = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path = lines[0].split(" ")[:2]
                length = 0
                for ln in lines[1:]:
                    name, _, value = ln.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                raw = await reader.readexactly(length) if length else b""
                if method == "GET":
                    await self.get(path, writer)
                elif await self.post(path, json.loads(raw) if raw else {}, reader, writer) == "streamed":
                    # llama-server closes the connection a moment after a streamed answer, without a header;
                    # a request a client sent on it meanwhile is lost (counted: a gateway must not do that)
                    with contextlib.suppress(asyncio.TimeoutError):
                        if await asyncio.wait_for(reader.read(1), CLOSE_AFTER_STREAM):
                            self.stats["dropped"] += 1
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def respond(self, writer: asyncio.StreamWriter, status: int, payload) -> None:
        body = json.dumps(payload, default=list).encode()
        writer.write(f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\ncontent-type: application/json\r\n"
                     f"content-length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()

    async def get(self, path: str, writer: asyncio.StreamWriter) -> None:
        if path == "/health":
            if time.monotonic() - self.born < self.args.load_seconds:
                return await self.respond(writer, 503, {"error": {"code": 503, "message": "Loading model",
                                                                  "type": "unavailable_error"}})
            return await self.respond(writer, 200, {"status": "ok"})
        if path == "/stats":
            return await self.respond(writer, 200, self.stats)
        if path == "/slots":
            return await self.respond(writer, 200, [{"id": i, "is_processing": i < self.active}
                                                    for i in range(self.args.slots)])
        if path == "/v1/models":
            return await self.respond(writer, 200, {"object": "list", "data": [{"id": self.args.alias}]})
        if path == "/props":
            return await self.respond(writer, 200, {"chat_template": "fake", "total_slots": self.args.slots,
                                                    "default_generation_settings": {}})
        await self.respond(writer, 404, {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}})

    async def post(self, path: str, body: dict, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> str | None:
        self.stats["requests"] += 1
        self.stats["bodies"].append(body)
        if path == "/v1/embeddings":
            self.stats["completed"] += 1
            return await self.respond(writer, 200, {"object": "list", "data": [
                {"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}]})
        if path in INSTANT:
            self.stats["completed"] += 1
            return await self.respond(writer, 200, INSTANT[path])
        if self.args.error_status:
            self.stats["completed"] += 1
            return await self.respond(writer, self.args.error_status, {"error": {
                "code": self.args.error_status, "message": "fake engine refuses", "type": "invalid_request_error"}})
        kind = KINDS.get(path, "completion")
        asked = body.get("max_tokens", body.get("max_output_tokens", body.get("n_predict")))
        asked = asked if isinstance(asked, int) and not isinstance(asked, bool) and asked > 0 else 5
        n = self.args.tokens if self.args.tokens is not None else min(asked, CONTEXT)  # as a real context ends it
        self.active += 1
        try:
            if body.get("stream"):
                await self.stream(kind, n, reader, writer)
                return "streamed"
            else:
                await self.complete(kind, n, body, writer)
        finally:
            self.active -= 1

    async def complete(self, kind: str, n: int, body: dict, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(self.args.delay * n)
        self.stats["completed"] += 1
        text = "".join(f"t{i} " for i in range(n))
        await self.respond(writer, 200, answer(kind, text, n, body.get("model")))

    async def stream(self, kind: str, n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Chunked, as llama-server answers (which then closes the connection). A client that hangs up
        shows as EOF on the reader (no pipelining: nothing else may arrive mid-answer); that counts as
        cancelled."""
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        head, tail = event_template(kind)
        if opening(kind):
            writer.write(chunked(opening(kind)))
        for i in range(n):
            if i == self.args.crash_after:
                os.kill(os.getpid(), signal.SIGKILL)
            if reader.at_eof():
                self.stats["cancelled"] += 1
                raise ConnectionResetError("client went away")
            writer.write(chunked(head + b"%d" % i + tail))
            await writer.drain()
            if self.args.delay:
                await asyncio.sleep(self.args.delay)
        if not self.args.truncate:
            writer.write(chunked(final_event(kind, n)))
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        self.stats["completed"] += 1


async def serve(args: argparse.Namespace) -> None:
    engine = FakeEngine(args)
    if args.ignore_sigterm:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: print("fake: ignoring SIGTERM",
                                                                                    flush=True))
    server = await asyncio.start_server(engine.handle, args.host, args.port)
    print(f"fake: listening on {args.port}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.fail_start:
        print("fake: cannot load model: file is corrupt", flush=True)
        sys.exit(3)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
