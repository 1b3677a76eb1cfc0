"""HTTP/1.1 and gRPC on one port, as the anyserve documents use port 8000 both ways.

The gateway's HTTP protocol (limits.GuardedHttp) looks at a connection's first bytes once: HTTP/2's
client preface (what a gRPC client sends first: it speaks HTTP/2 with prior knowledge, no upgrade) hands
the connection to a `GrpcRelay`, which pipes its bytes both ways to the gateway's own gRPC server
(grpc.aio, the same service as `gateway.grpc_port`) on a private unix socket. Anything else stays
HTTP/1.1 with uvicorn, and pays nothing more than that one look.
"""
from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("launcher.gateway")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def looks_like_http2(data: bytes) -> bool | None:
    """True for HTTP/2's preface, False for anything else, None while what came so far could be either."""
    if len(data) >= len(PREFACE):
        return data.startswith(PREFACE)
    return None if PREFACE.startswith(data) else False


class _Side(asyncio.Protocol):
    """One end of the relay: what it reads goes to the other end; a full other end pauses this one."""

    def __init__(self, relay: "GrpcRelay"):
        self.relay = relay
        self.transport: asyncio.Transport | None = None
        self.peer: "_Side | None" = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.peer.transport.write(data)

    def eof_received(self) -> bool:
        if self.peer.transport.can_write_eof():
            self.peer.transport.write_eof()
        return True  # keep the other direction open until it ends too

    def connection_lost(self, exc) -> None:
        self.relay.close()

    def pause_writing(self) -> None:
        self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        self.peer.transport.resume_reading()


class GrpcRelay:
    """A client connection taken over from the HTTP protocol, relayed to the gRPC server's unix socket."""

    def __init__(self, transport: asyncio.Transport, first: bytes, socket_path: str):
        self.client = _Side(self)
        self.server = _Side(self)
        self.client.peer, self.server.peer = self.server, self.client
        self.client.transport = transport
        self.closed = False
        transport.set_protocol(self.client)
        transport.pause_reading()  # until the server side is connected
        self._task = asyncio.get_running_loop().create_task(self._connect(first, socket_path))

    async def _connect(self, first: bytes, socket_path: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_unix_connection(lambda: self.server, socket_path)
        except OSError as exc:
            log.warning("gRPC on the HTTP port: the gRPC server did not answer (%s)", exc)
            self.close()
            return
        if self.closed:  # the client left while we connected
            self.server.transport.close()
            return
        self.server.transport.write(first)
        self.client.transport.resume_reading()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for side in (self.client, self.server):
            if side.transport is not None and not side.transport.is_closing():
                side.transport.close()
