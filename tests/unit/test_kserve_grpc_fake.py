"""Tier 1: KServe v2 over gRPC in front of the fake engine, with launcher's own stub as the client
(tritonclient drives the real server in tier 2)."""
import struct
import threading

import grpc
import pytest

from launcher.protocols.kserve import grpc_predict_v2_pb2 as pb
from launcher.protocols.kserve.service import Stub
from launcher.testing.launched import wait_for
from tests.fakes.harness import PORTS, gateway


def raw_bytes(*items: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


def infer_request(prompt: str = "Once", raw: bool = True, rid: str = "r1", model: str = "fake") -> pb.ModelInferRequest:
    req = pb.ModelInferRequest(model_name=model, id=rid)
    tensor = req.inputs.add(name="prompt", datatype="BYTES", shape=[1])
    if raw:
        req.raw_input_contents.append(raw_bytes(prompt.encode()))
    else:
        tensor.contents.bytes_contents.append(prompt.encode())
    return req


@pytest.fixture
def grpc_gw(tmp_path, request):
    port = next(PORTS)
    flags, keys = getattr(request, "param", (["--tokens", "3"], ()))
    with gateway(tmp_path, flags, keys=keys, extra=f"gateway: {{grpc_port: {port}}}\n") as gw:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield gw, Stub(channel)


def test_health_and_metadata(grpc_gw):
    _, stub = grpc_gw
    assert stub.ServerLive(pb.ServerLiveRequest()).live and stub.ServerReady(pb.ServerReadyRequest()).ready
    assert list(stub.ServerMetadata(pb.ServerMetadataRequest()).extensions) == ["binary_tensor_data", "parameters",
                                                                               "generate"]
    meta = stub.ModelMetadata(pb.ModelMetadataRequest(name="fake"))
    assert meta.versions == ["1"] and [i.name for i in meta.inputs][:3] == ["prompt", "text_input", "max_tokens"]
    assert stub.ModelReady(pb.ModelReadyRequest(name="fake")).ready
    with pytest.raises(grpc.RpcError) as err:
        stub.ModelMetadata(pb.ModelMetadataRequest(name="nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_infer_answers_in_the_form_it_was_asked(grpc_gw):
    _, stub = grpc_gw
    raw = stub.ModelInfer(infer_request(raw=True))
    assert raw.id == "r1" and raw.raw_output_contents[0] == raw_bytes(b"t0 t1 t2 ")
    assert raw.raw_output_contents[1] == raw_bytes(b"length") and raw.parameters["completion_tokens"].int64_param == 3
    typed = stub.ModelInfer(infer_request(raw=False))
    assert not typed.raw_output_contents
    assert list(typed.outputs[0].contents.bytes_contents) == [b"t0 t1 t2 "]
    bad = infer_request()
    bad.inputs.add(name="max_tokens", datatype="BYTES", shape=[1])
    bad.raw_input_contents.append(raw_bytes(b"x"))
    with pytest.raises(grpc.RpcError) as err:
        stub.ModelInfer(bad)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "max_tokens" in err.value.details()


def test_stream_serves_several_requests_with_a_final_response_each(grpc_gw):
    _, stub = grpc_gw
    responses = list(stub.ModelStreamInfer(iter([infer_request(rid="a"), infer_request(rid="b")])))
    by_id: dict[str, list] = {"a": [], "b": []}
    for r in responses:
        assert r.error_message == ""
        by_id[r.infer_response.id].append(r.infer_response)
    for rid, parts in by_id.items():
        texts = [p.raw_output_contents[0][4:].decode() for p in parts]
        assert "".join(texts) == "t0 t1 t2 " and parts[-1].parameters["triton_final_response"].bool_param
        assert parts[-1].raw_output_contents[1][4:] == b"length"
        assert not any(p.parameters["triton_final_response"].bool_param for p in parts[:-1])


def test_a_bad_request_in_a_stream_is_an_error_message_and_the_stream_goes_on(grpc_gw):
    _, stub = grpc_gw
    responses = list(stub.ModelStreamInfer(iter([infer_request(model="nope", rid="x"), infer_request(rid="y")])))
    errors = [r for r in responses if r.error_message]
    assert len(errors) == 1 and errors[0].infer_response.id == "x" and "nope" in errors[0].error_message
    assert [r.infer_response.id for r in responses if not r.error_message][-1] == "y"


@pytest.mark.parametrize("grpc_gw", [(["--tokens", "500", "--delay", "0.02"], ())], indirect=True)
def test_cancelling_a_stream_frees_the_engine_request(grpc_gw):
    gw, stub = grpc_gw
    call = stub.ModelStreamInfer(iter([infer_request()]))
    seen, ended = [], []

    def read():
        try:
            for r in call:
                seen.append(r)
        except grpc.RpcError as exc:
            ended.append(exc.code())
    reader = threading.Thread(target=read)
    reader.start()
    assert wait_for(lambda: len(seen) >= 3, 10)
    call.cancel()
    reader.join(10)
    assert ended == [grpc.StatusCode.CANCELLED]
    assert wait_for(lambda: gw.stats()["cancelled"] == 1, 5)
    assert wait_for(lambda: gw.runners[0].upstreams[0].in_flight == 0, 5)


@pytest.mark.parametrize("grpc_gw", [(["--tokens", "2"], ("k-1",))], indirect=True)
def test_keys_in_authorization_metadata(grpc_gw):
    _, stub = grpc_gw
    assert stub.ServerLive(pb.ServerLiveRequest()).live  # health stays public
    with pytest.raises(grpc.RpcError) as err:
        stub.ModelInfer(infer_request())
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as err:
        list(stub.ModelStreamInfer(iter([infer_request()]), metadata=[("authorization", "Bearer wrong")]))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    ok = stub.ModelInfer(infer_request(), metadata=[("authorization", "Bearer k-1")])
    assert ok.raw_output_contents[0] == raw_bytes(b"t0 t1 ")
