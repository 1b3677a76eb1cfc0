"""Tier 1: the checked-in KServe gRPC messages module is what `make proto` generates from the .proto, and it
shares a process with tritonclient (whose `inference.*` messages fill protobuf's default pool)."""
import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path("launcher/protocols/kserve")


def test_generated_grpc_modules_are_not_stale(tmp_path):
    (tmp_path / PACKAGE).mkdir(parents=True)
    shutil.copy(ROOT / PACKAGE / "grpc_predict_v2.proto", tmp_path / PACKAGE)
    code = protoc.main(["protoc", f"-I{tmp_path}", f"--python_out={tmp_path}",
                        str(tmp_path / PACKAGE / "grpc_predict_v2.proto")])
    assert code == 0
    for name in ("grpc_predict_v2_pb2.py",):
        fresh, checked_in = (tmp_path / PACKAGE / name).read_text(), (ROOT / PACKAGE / name).read_text()
        assert fresh == checked_in, f"{PACKAGE / name} is stale: run `make proto` ({sys.executable} -m grpc_tools.protoc)"


def test_launcher_and_tritonclient_share_a_process():
    import tritonclient.grpc.service_pb2 as triton  # registers inference.* in the default pool

    from launcher.protocols.kserve import grpc_predict_v2_pb2 as ours
    request = triton.ModelInferRequest(model_name="m", id="x")
    request.inputs.add(name="prompt", datatype="BYTES", shape=[1]).contents.bytes_contents.append(b"hi")
    same = ours.ModelInferRequest.FromString(request.SerializeToString())  # the same wire
    assert (same.model_name, same.id, same.inputs[0].contents.bytes_contents[0]) == ("m", "x", b"hi")
