"""HTTP/1.1 and gRPC on one port, as the anyserve documents use port 8000 both ways.

The gateway's HTTP protocol (limits.GuardedHttp) looks at a connection's first bytes once: HTTP/2's
client preface (what a gRPC client sends first: it speaks HTTP/2 with prior knowledge, no upgrade) hands
the connection over to the gateway's gRPC protocol (kserve/grpc_http2.py, the same as `gateway.grpc_port`
serves). Anything else stays HTTP/1.1 with uvicorn, and pays nothing more than that one look.
"""
from __future__ import annotations

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def looks_like_http2(data: bytes) -> bool | None:
    """True for HTTP/2's preface, False for anything else, None while what came so far could be either."""
    if len(data) >= len(PREFACE):
        return data.startswith(PREFACE)
    return None if PREFACE.startswith(data) else False
