"""gRPC's HTTP/2 side in the gateway's own event loop: `InferenceService` (grpc_service.py) served over h2.

Why not grpc.aio's server: measured with a bare grpc.aio server (2 ms between messages), its C core, poller
thread and completion queue cost about 70 µs of CPU per streamed message, more than the gateway's whole
OpenAI stream per token (`launch bench cost`); h2 frames a message in about 5 µs. And the HTTP port hands
its HTTP/2 connections straight to this protocol (limits.GuardedHttp): no relay, no second server.

A call: request HEADERS (`:path` /inference.GRPCInferenceService/<Method>, metadata), DATA holding
length-prefixed protobuf messages, END_STREAM; the answer: HEADERS, a DATA message per response, trailers
with grpc-status and grpc-message. Compressed messages are refused (clients do not compress unless told to).
A RST_STREAM or a lost connection cancels the call's task, which closes its engine request.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Callable
from urllib.parse import quote

import grpc
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import ConnectionTerminated, DataReceived, RequestReceived, StreamEnded, StreamReset, WindowUpdated
from h2.exceptions import ProtocolError, StreamClosedError

from ...protocols.kserve.service import METHODS, SERVICE
from ..auth import presented_key
from ..keys import ANONYMOUS, Keyring, current

log = logging.getLogger("launcher.grpc")
PUBLIC = {"ServerLive", "ServerReady"}
HIGH_WATER = 1 << 20   # bytes the client's socket may hold unsent before a call waits for it


class Abort(Exception):
    """What `context.abort` raises: the call ends with this status."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(details)
        self.code, self.details = code, details


class Context:
    """The parts of grpc's ServicerContext the service uses, and `emit`: a streaming call's responses are sent
    the moment they are made (from the engine socket's callback), not yielded through a task switch."""
    __slots__ = ("metadata", "emit")

    def __init__(self, metadata: tuple[tuple[str, str], ...], emit=None):
        self.metadata, self.emit = metadata, emit

    def invocation_metadata(self):
        return self.metadata

    async def abort(self, code: grpc.StatusCode, details: str):
        raise Abort(code, details)


class GrpcServer:
    """The service (set once the gateway's state exists) and every connection, for a draining stop."""

    def __init__(self):
        self.service = None
        self.keyring: Callable[[], Keyring] = Keyring
        self.connections: set[GrpcConnection] = set()
        self.stopping = False
        self._listeners: list[asyncio.base_events.Server] = []

    def serve(self, service, keyring: Callable[[], Keyring]) -> None:
        self.service, self.keyring = service, keyring

    async def listen(self, host: str, port: int) -> None:
        """A port of its own (gateway.grpc_port), besides the HTTP port's HTTP/2 connections."""
        server = await asyncio.get_running_loop().create_server(lambda: GrpcConnection(self), host, port)
        self._listeners.append(server)
        log.info("KServe v2 gRPC on %s:%d", host, port)

    def adopt(self, transport: asyncio.Transport, first: bytes) -> None:
        """An HTTP/2 connection the HTTP port received: from now on it is ours."""
        connection = GrpcConnection(self)
        transport.set_protocol(connection)
        connection.connection_made(transport)
        connection.data_received(first)

    async def stop(self, grace: float) -> None:
        """No new calls (GOAWAY); running ones get `grace` seconds, then are cancelled."""
        self.stopping = True
        for server in self._listeners:
            server.close()
        for c in list(self.connections):
            c.go_away()
        deadline = asyncio.get_running_loop().time() + grace
        while any(c.calls for c in self.connections) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for c in list(self.connections):
            c.close()


class Call:
    __slots__ = ("stream_id", "method", "metadata", "buffer", "requests", "task", "sent_headers", "pending",
                 "drained", "context")

    def __init__(self, stream_id: int, method: str, metadata: tuple):
        self.stream_id, self.method, self.metadata = stream_id, method, metadata
        self.buffer = bytearray()
        self.requests: asyncio.Queue | None = None   # a streaming call's messages (None at their end)
        self.task: asyncio.Task | None = None
        self.sent_headers = False
        self.pending = bytearray()                   # framed responses the client's window has no room for yet
        self.drained: asyncio.Event | None = None    # set when `pending` empties


class GrpcConnection(asyncio.Protocol):
    def __init__(self, server: GrpcServer):
        self.server = server
        self.h2 = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        self.transport: asyncio.Transport | None = None
        self.calls: dict[int, Call] = {}
        self._writable = asyncio.Event()
        self._writable.set()

    # --- the connection ---------------------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.server.connections.add(self)
        self.h2.initiate_connection()
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except ProtocolError:
            self._flush()
            self.close()
            return
        for event in events:
            if isinstance(event, RequestReceived):
                self._request(event.stream_id, event.headers)
            elif isinstance(event, DataReceived):
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                call = self.calls.get(event.stream_id)
                if call is not None:
                    call.buffer += event.data
                    if call.requests is not None:  # a unary call reads its one message at the end
                        self._messages(call)
            elif isinstance(event, StreamEnded):
                call = self.calls.get(event.stream_id)
                if call is not None:
                    self._half_closed(call)
            elif isinstance(event, StreamReset):
                call = self.calls.pop(event.stream_id, None)
                if call is not None and call.task is not None:
                    call.task.cancel()
            elif isinstance(event, WindowUpdated):
                for call in ([self.calls.get(event.stream_id)] if event.stream_id else list(self.calls.values())):
                    if call is not None and call.pending:
                        self._pump(call)
            elif isinstance(event, ConnectionTerminated):
                self.close()
                return
        self._flush()

    def connection_lost(self, exc) -> None:
        self.server.connections.discard(self)
        for call in self.calls.values():
            if call.task is not None:
                call.task.cancel()
        self.calls.clear()
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def go_away(self) -> None:
        self.h2.close_connection()
        self._flush()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    # --- a call -----------------------------------------------------------------------------------------
    def _request(self, stream_id: int, headers) -> None:
        fields = dict(headers)
        prefix, _, method = fields.get(":path", "").rpartition("/")
        if prefix != f"/{SERVICE}" or method not in METHODS:
            return self._trailers_only(stream_id, grpc.StatusCode.UNIMPLEMENTED, f"unknown method {fields.get(':path')}")
        if self.server.stopping or self.server.service is None:
            return self._trailers_only(stream_id, grpc.StatusCode.UNAVAILABLE, "the gateway is shutting down")
        metadata = tuple((k, v) for k, v in headers if not k.startswith(":") and not k.endswith("-bin"))
        keyring, who = self.server.keyring(), ANONYMOUS
        if keyring.secrets and method not in PUBLIC:
            who = keyring.identify(presented_key(dict(metadata)))
            if who is None:
                return self._trailers_only(stream_id, grpc.StatusCode.UNAUTHENTICATED,
                                           "missing or wrong API key: send `authorization: Bearer <key>` metadata")
        call = Call(stream_id, method, metadata)
        call.context = contextvars.copy_context()   # the call's task runs as the key's holder (keys.current)
        call.context.run(current.set, who)
        self.calls[stream_id] = call
        if METHODS[method][2]:  # streaming: the handler runs from now on, fed as messages come
            call.requests = asyncio.Queue()
            call.task = asyncio.get_running_loop().create_task(self._stream(call), context=call.context)

    def _messages(self, call: Call) -> None:
        """Whole length-prefixed messages out of the call's buffer."""
        buf = call.buffer
        while len(buf) >= 5:
            size = int.from_bytes(buf[1:5], "big")
            if len(buf) < 5 + size:
                return
            compressed, payload = buf[0], bytes(buf[5:5 + size])
            del buf[:5 + size]
            if compressed:
                self._fail(call, grpc.StatusCode.UNIMPLEMENTED, "compressed messages are not supported")
                return
            call.requests.put_nowait(payload)

    def _half_closed(self, call: Call) -> None:
        """The client sent its last message: a unary call runs now, a streaming one learns its input ended."""
        if call.requests is not None:
            call.requests.put_nowait(None)
        elif call.task is None:
            call.task = asyncio.get_running_loop().create_task(self._unary(call, bytes(call.buffer)),
                                                               context=call.context)

    async def _unary(self, call: Call, data: bytes) -> None:
        async def work() -> None:
            if len(data) < 5 or int.from_bytes(data[1:5], "big") != len(data) - 5:
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "expected one length-prefixed request message")
            if data[0]:
                raise Abort(grpc.StatusCode.UNIMPLEMENTED, "compressed messages are not supported")
            request = METHODS[call.method][0].FromString(data[5:])
            response = await getattr(self.server.service, call.method)(request, Context(call.metadata))
            await self._sent(call, self._emit(call, response))
        await self._ended(call, work())

    async def _stream(self, call: Call) -> None:
        request_type = METHODS[call.method][0]

        async def requests():
            while (payload := await call.requests.get()) is not None:
                try:
                    yield request_type.FromString(payload)
                except Exception as exc:  # protobuf's DecodeError
                    raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad request message: {exc}") from None

        async def work() -> None:
            await getattr(self.server.service, call.method)(requests(), Context(call.metadata,
                                                                                lambda m: self._emit(call, m)))
            await self._sent(call, None)
        await self._ended(call, work())

    async def _ended(self, call: Call, work) -> None:
        """Run a call's handler, then end the call with its status: OK, the status it aborted with, or
        INTERNAL for a bug (logged). A cancelled call (reset, or its connection lost) just stops."""
        try:
            await work
            self._end(call, grpc.StatusCode.OK, "")
        except Abort as exc:
            self._end(call, exc.code, exc.details)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("gRPC %s failed", call.method)
            self._end(call, grpc.StatusCode.INTERNAL, "internal error in the gateway")

    def _emit(self, call: Call, message):
        """Send one response now, as far as the client's flow-control window allows; the rest waits for it.
        Returns an awaitable when the caller should wait (window closed, or the socket's buffer full)."""
        if call.stream_id not in self.calls:
            return None   # the client reset the call
        if not call.sent_headers:
            call.sent_headers = True
            self.h2.send_headers(call.stream_id, [(":status", "200"), ("content-type", "application/grpc")])
        body = message if type(message) is bytes else message.SerializeToString()  # streams.GrpcMessages
        call.pending += b"\x00" + len(body).to_bytes(4, "big") + body
        self._pump(call)
        # a task, not a bare coroutine: a caller that does not wait (an error response) leaves nothing unawaited
        if call.pending:
            call.drained = call.drained or asyncio.Event()
            call.drained.clear()
            return asyncio.ensure_future(call.drained.wait())
        return None if self._writable.is_set() else asyncio.ensure_future(self._writable.wait())

    def _pump(self, call: Call) -> None:
        """What of `pending` the window takes, written to the socket as DATA frames framed here: h2's send_data
        costs 5 µs a frame (its state machine and frame objects), a third of a streamed token's whole cost.
        The windows it keeps are lowered by what is sent, as send_data would; the stream is open (a reset or
        ended call has left `calls`, and nothing is sent for it)."""
        stream = self.h2.streams.get(call.stream_id)
        out = [self.h2.data_to_send()]   # what h2 queued (the call's HEADERS) goes first
        while call.pending and stream is not None:
            room = min(stream.outbound_flow_control_window, self.h2.outbound_flow_control_window,
                       self.h2.max_outbound_frame_size)
            if room <= 0:
                break
            payload = bytes(call.pending[:room])
            del call.pending[:room]
            stream.outbound_flow_control_window -= len(payload)
            self.h2.outbound_flow_control_window -= len(payload)
            out += (len(payload).to_bytes(3, "big") + b"\x00\x00" + call.stream_id.to_bytes(4, "big"), payload)
        if stream is None:
            call.pending.clear()
        if not call.pending and call.drained is not None:
            call.drained.set()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(out))

    async def _sent(self, call: Call, waiting) -> None:
        """Everything of the call is in the socket (trailers must come after it)."""
        if waiting is not None:
            await waiting
        while call.pending and call.stream_id in self.calls:
            call.drained = call.drained or asyncio.Event()
            call.drained.clear()
            await call.drained.wait()

    def _end(self, call: Call, code: grpc.StatusCode, details: str) -> None:
        if self.calls.pop(call.stream_id, None) is None:
            return   # reset by the client meanwhile
        trailers = [("grpc-status", str(code.value[0]))] + ([("grpc-message", _percent(details))] if details else [])
        try:
            if call.sent_headers:
                self.h2.send_headers(call.stream_id, trailers, end_stream=True)
            else:
                self._trailers_only(call.stream_id, code, details)
                return
        except (StreamClosedError, ProtocolError):
            return
        self._flush()

    def _fail(self, call: Call, code: grpc.StatusCode, details: str) -> None:
        if call.task is not None:
            call.task.cancel()
        self._end(call, code, details)

    def _trailers_only(self, stream_id: int, code: grpc.StatusCode, details: str) -> None:
        headers = [(":status", "200"), ("content-type", "application/grpc"), ("grpc-status", str(code.value[0]))]
        if details:
            headers.append(("grpc-message", _percent(details)))
        try:
            self.h2.send_headers(stream_id, headers, end_stream=True)
        except (StreamClosedError, ProtocolError):
            try:
                self.h2.reset_stream(stream_id, ErrorCodes.INTERNAL_ERROR)
            except (StreamClosedError, ProtocolError):
                pass
        self._flush()


def _percent(text: str) -> str:
    """grpc-message: printable ASCII but '%' as it is, the rest percent-encoded (UTF-8)."""
    return "".join(c if " " <= c <= "~" and c != "%" else quote(c, safe="") for c in text)
