"""KServe v2 messages between their REST JSON form (`contents`, bytes in base64) and their protobuf form.

Used where one hop speaks gRPC and the next REST: the gateway relaying a gRPC call to a worker or a
registered replica, and the worker SDK's Client over gRPC.
"""
from __future__ import annotations

import base64

from . import grpc_predict_v2_pb2 as pb
from .tensors import CONTENTS, encode_raw, grpc_inputs, grpc_parameters


def set_parameters(field, values: dict) -> None:
    """Fill a protobuf `map<string, InferParameter>` from plain values."""
    for key, value in values.items():
        param = field[key]
        if isinstance(value, bool):
            param.bool_param = value
        elif isinstance(value, int):
            param.int64_param = value
        elif isinstance(value, float):
            param.double_param = value
        else:
            param.string_param = str(value)


def _contents_values(datatype: str, contents: dict) -> list:
    values = contents.get(CONTENTS.get(datatype, "bytes_contents"), [])
    return [base64.b64decode(v) for v in values] if datatype == "BYTES" else list(values)


def _json_values(datatype: str, values: list) -> list:
    return [base64.b64encode(v).decode() for v in values] if datatype == "BYTES" else list(values)


def proto_request(model_name: str, body: dict) -> pb.ModelInferRequest:
    """A REST request body (inputs in `contents` form) as a protobuf request."""
    request = pb.ModelInferRequest(model_name=model_name, id=str(body.get("id") or ""))
    set_parameters(request.parameters, body.get("parameters") or {})
    for tensor in body.get("inputs") or []:
        message = request.inputs.add(name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"])
        set_parameters(message.parameters, tensor.get("parameters") or {})
        getattr(message.contents, CONTENTS[tensor["datatype"]]).extend(
            _contents_values(tensor["datatype"], tensor["contents"]))
    for out in body.get("outputs") or []:
        asked = request.outputs.add(name=out["name"])
        set_parameters(asked.parameters, out.get("parameters") or {})
    return request


def json_request(request: pb.ModelInferRequest) -> dict:
    """A protobuf request (typed or raw contents) as a REST body in `contents` form."""
    tensors, _ = grpc_inputs(request)
    body: dict = {"inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape),
                              "contents": {CONTENTS[t.datatype]: _json_values(t.datatype, t.values)},
                              **({"parameters": t.parameters} if t.parameters else {})} for t in tensors]}
    if request.id:
        body["id"] = request.id
    params = grpc_parameters(request.parameters)
    if params:
        body["parameters"] = params
    if request.outputs:
        body["outputs"] = [{"name": o.name, **({"parameters": grpc_parameters(o.parameters)} if o.parameters else {})}
                           for o in request.outputs]
    return body


def proto_response(data: dict, raw: bool) -> pb.ModelInferResponse:
    """A REST answer (`contents` or `data` form) as a protobuf response; `raw` puts the outputs in
    raw_output_contents (what tritonclient reads) instead of typed contents."""
    response = pb.ModelInferResponse(model_name=str(data.get("model_name", "")),
                                     model_version=str(data.get("model_version", "")), id=str(data.get("id", "")))
    set_parameters(response.parameters, data.get("parameters") or {})
    for out in data.get("outputs") or []:
        datatype = out.get("datatype", "BYTES")
        if "contents" in out:
            values = _contents_values(datatype, out["contents"])
        else:
            values = out.get("data") or []
            values = [v.encode() if isinstance(v, str) else v for v in values] if datatype == "BYTES" else values
        tensor = response.outputs.add(name=out["name"], datatype=datatype, shape=out.get("shape") or [len(values)])
        if raw:
            response.raw_output_contents.append(encode_raw(datatype, values))
        else:
            getattr(tensor.contents, CONTENTS.get(datatype, "bytes_contents")).extend(values)
    return response
