"""Tier 1: HTTP/1.1 and gRPC on the gateway's one port (gateway/shared_port.py), in front of the fake engine."""
from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import grpc
import httpx
import pytest

from launcher.gateway.shared_port import PREFACE, looks_like_http2
from launcher.protocols.kserve import grpc_predict_v2_pb2 as pb
from launcher.protocols.kserve.service import Stub
from tests.fakes.harness import gateway
from tests.unit.test_kserve_grpc_fake import infer_request


def address(gw) -> str:
    return urlsplit(gw.url).netloc


def test_the_preface_is_told_apart_from_http_methods():
    assert looks_like_http2(PREFACE + b"\x00\x00") is True
    assert looks_like_http2(b"PRI * HT") is None        # could still be HTTP/2: wait for more
    assert looks_like_http2(b"P") is None
    assert looks_like_http2(b"POST /v1/chat/completions HTTP/1.1\r\n") is False
    assert looks_like_http2(b"PUT / HTTP/1.1") is False and looks_like_http2(b"GET / HTTP/1.1") is False


def test_http_and_grpc_answer_on_the_same_port(tmp_path):
    with gateway(tmp_path, ["--tokens", "3"]) as gw:
        with grpc.insecure_channel(address(gw)) as channel:
            stub = Stub(channel)
            assert stub.ServerLive(pb.ServerLiveRequest()).live
            assert stub.ModelInfer(infer_request()).raw_output_contents
            events = list(stub.ModelStreamInfer(iter([infer_request(rid="s")])))
            assert [e.infer_response.id for e in events] == ["s"] * 4 and not any(e.error_message for e in events)
            assert httpx.get(gw.url + "/v1/models").status_code == 200   # HTTP on the same port meanwhile
        assert httpx.post(gw.url + "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}
                          ).status_code == 200
        metrics = httpx.get(gw.url + "/metrics").text
        assert 'endpoint="ModelStreamInfer",model="fake",protocol="grpc",status="200"' in metrics


def test_a_stream_cancelled_on_the_shared_port_frees_the_engine(tmp_path):
    with gateway(tmp_path, ["--tokens", "200", "--delay", "0.02"]) as gw:   # one engine slot
        with grpc.insecure_channel(address(gw)) as channel:
            stub = Stub(channel)
            call = stub.ModelStreamInfer(iter([infer_request(rid="long")]))
            next(call)
            call.cancel()
            with grpc.insecure_channel(address(gw)) as again:
                done = list(Stub(again).ModelStreamInfer(iter([infer_request(rid="next")]), timeout=30))
            assert done and done[-1].infer_response.parameters["triton_final_response"].bool_param


def test_a_preface_split_over_two_writes_still_reaches_grpc(tmp_path):
    with gateway(tmp_path, ["--tokens", "3"]) as gw:
        host, port = address(gw).split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(PREFACE[:5])
            time.sleep(0.2)
            sock.sendall(PREFACE[5:] + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")   # then an empty SETTINGS frame
            frame = sock.recv(9)
        assert len(frame) == 9 and frame[3] == 0x4   # the gRPC server's own SETTINGS frame: HTTP/2 came back


@pytest.mark.parametrize("first", [b"P", b"garbage\r\n\r\n"])
def test_what_is_not_http2_stays_with_http(tmp_path, first):
    with gateway(tmp_path, ["--tokens", "3"]) as gw:
        host, port = address(gw).split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(first)
            time.sleep(0.1)
            rest = b"OST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" \
                   b"Content-Length: 15\r\n\r\n{\"prompt\":\"hi\"}" if first == b"P" else b""
            sock.sendall(rest)
            answer = sock.recv(64)
        assert answer.startswith(b"HTTP/1.1 200" if first == b"P" else b"HTTP/1.1 400"), answer
