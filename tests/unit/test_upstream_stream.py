"""The lean upstream client for streamed answers (gateway/upstream.py) against raw sockets that misbehave
on purpose, and the relay's back-pressure."""
import asyncio

import httpx
import pytest

from launcher.gateway.upstream import HIGH_WATER, open_stream

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def frame(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def serve(handler):
    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        try:
            await handler(reader, writer)
        finally:
            writer.close()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def run(coro):
    return asyncio.run(coro)


def test_a_stream_arrives_whole_and_in_order():
    events = [b"data: {\"n\": %d}\n\n" % i for i in range(50)] + [b"data: [DONE]\n\n"]

    async def handler(reader, writer):
        writer.write(HEAD)
        for e in events:
            writer.write(frame(e))
            await writer.drain()
        writer.write(b"0\r\n\r\n")

    async def main():
        server, url = await serve(handler)
        resp = await open_stream(url + "/v1/chat/completions", b"{}", {"content-type": "application/json"}, 5, 5)
        assert resp.status_code == 200 and resp.headers["content-type"] == "text/event-stream"
        got = [line async for line in resp.aiter_lines() if line]
        await resp.aclose()
        server.close()
        return got
    assert run(main()) == [e.decode().strip() for e in events]


def test_refused_is_connect_error_and_nothing_was_sent():
    async def main():
        server, url = await serve(lambda r, w: asyncio.sleep(0))
        server.close()
        await server.wait_closed()
        await open_stream(url + "/x", b"{}", {}, 5, 5)
    with pytest.raises(httpx.ConnectError):
        run(main())


async def _silent(reader, writer):
    pass  # reads the request, closes


async def _not_http(reader, writer):
    writer.write(b"SMTP ready\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.5)


@pytest.mark.parametrize("handler", [_silent, _not_http], ids=["closed without an answer", "malformed head"])
def test_no_valid_answer_is_a_protocol_error(handler):
    async def main():
        server, url = await serve(handler)
        try:
            await open_stream(url + "/x", b"{}", {}, 5, 5)
        finally:
            server.close()
    with pytest.raises(httpx.RemoteProtocolError):
        run(main())


def test_cut_mid_stream_is_a_read_error_after_the_bytes_that_came():
    async def handler(reader, writer):
        writer.write(HEAD + frame(b"data: 1\n\n"))
        await writer.drain()
        await asyncio.sleep(0.1)  # then gone, without the last chunk

    async def main():
        server, url = await serve(handler)
        resp = await open_stream(url + "/x", b"{}", {}, 5, 5)
        got = []
        with pytest.raises(httpx.ReadError):
            async for chunk in resp.aiter_raw():
                got.append(chunk)
        server.close()
        return got
    assert run(main()) == [b"data: 1\n\n"]


def test_silence_longer_than_the_read_timeout_is_a_read_timeout():
    async def handler(reader, writer):
        writer.write(HEAD + frame(b"data: 1\n\n"))
        await writer.drain()
        await asyncio.sleep(3)

    async def main():
        server, url = await serve(handler)
        resp = await open_stream(url + "/x", b"{}", {}, 5, 0.3)
        try:
            await resp.aread()
        finally:
            server.close()
    with pytest.raises(httpx.ReadTimeout):
        run(main())


def test_relay_stops_reading_while_the_sink_is_busy_and_loses_nothing():
    count = HIGH_WATER * 4

    async def handler(reader, writer):
        writer.write(HEAD)
        for i in range(count):
            writer.write(frame(b"data: %d\n\n" % i))
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def main():
        server, url = await serve(handler)
        resp = await open_stream(url + "/x", b"{}", {}, 5, 5)
        received, paused = [], []
        gate = asyncio.Event()

        async def slow():
            await asyncio.sleep(0.05)
            gate.set()

        def sink(chunk: bytes):
            received.append(chunk)
            if not gate.is_set():  # the first chunk finds the client slow: the relay must wait for it
                paused.append(True)
                return slow()
            return None
        await resp.relay(sink)
        server.close()
        return b"".join(received), paused
    data, paused = run(main())
    assert data == b"".join(b"data: %d\n\n" % i for i in range(count)) and paused
