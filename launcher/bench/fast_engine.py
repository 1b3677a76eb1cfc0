"""An engine that streams as fast as it can, for measuring the gateway's own cost.

Takes llama-server's command line (ignores what it does not need), so launcher runs it through
the normal path with `engine.binary` pointing at a wrapper. Raw asyncio: no framework overhead.
"""
from __future__ import annotations

import asyncio
import json
import sys

CHUNK = ("data: " + json.dumps({"choices": [{"index": 0, "text": "tok ", "finish_reason": None}],
                                "object": "text_completion", "model": "fast"}) + "\n\n").encode()


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


def _arg(name: str, default: str) -> str:
    argv = sys.argv
    return argv[argv.index(name) + 1] if name in argv else default


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            method, path = lines[0].split(" ")[:2]
            length = 0
            for ln in lines[1:]:
                if ln.lower().startswith("content-length:"):
                    length = int(ln.split(":")[1])
            body = json.loads(await reader.readexactly(length)) if length else {}
            if path == "/health" or method == "GET":
                payload = b'{"status":"ok"}'
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                             + str(len(payload)).encode() + b"\r\n\r\n" + payload)
                await writer.drain()
                continue
            n = int(body.get("max_tokens") or 16)
            # Chunked and kept alive, as llama-server answers.
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            for _ in range(n):
                writer.write(_chunked(CHUNK))
                await writer.drain()
            writer.write(_chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main() -> None:
    server = await asyncio.start_server(handle, _arg("--host", "127.0.0.1"), int(_arg("--port", "8081")))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
