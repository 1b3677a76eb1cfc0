"""KServe v2 tensors in every form a client may send, and back in the form it used.

    JSON `data`                       the standard REST form (`"data": ["Once upon a time"]`)
    `contents.bytes_contents` etc.    the protobuf-JSON form of the anyserve documents (bytes in base64)
    binary tensor data extension      REST: JSON header (Inference-Header-Content-Length) + raw tensor bytes
    raw_input_contents                gRPC: raw bytes per input (what tritonclient.grpc sends)

Raw BYTES elements are a 4-byte little-endian length followed by the bytes; numbers are little-endian.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any

from ...errors import BadRequest

# datatype -> struct code (BYTES has its own framing)
STRUCT = {"BOOL": "?", "UINT8": "B", "UINT16": "H", "UINT32": "I", "UINT64": "Q", "INT8": "b", "INT16": "h",
          "INT32": "i", "INT64": "q", "FP16": "e", "FP32": "f", "FP64": "d"}
CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
            "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents", "UINT32": "uint_contents",
            "UINT64": "uint64_contents", "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents"}
INTEGER = {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
FLOAT = {"FP16", "FP32", "FP64"}


@dataclass
class Tensor:
    name: str
    datatype: str
    shape: list[int]
    values: list               # BYTES: list of bytes; numbers: list of int/float/bool
    parameters: dict = field(default_factory=dict)


def serialize_bytes(items: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


def deserialize_bytes(raw: bytes, name: str) -> list[bytes]:
    out, i = [], 0
    while i < len(raw):
        if i + 4 > len(raw):
            raise BadRequest(f"input {name!r}: BYTES data is cut short", param=name)
        n = struct.unpack_from("<I", raw, i)[0]
        if i + 4 + n > len(raw):
            raise BadRequest(f"input {name!r}: BYTES element longer than the data", param=name)
        out.append(raw[i + 4:i + 4 + n])
        i += 4 + n
    return out


def decode_raw(datatype: str, raw: bytes, name: str) -> list:
    if datatype == "BYTES":
        return deserialize_bytes(raw, name)
    if datatype not in STRUCT:
        raise BadRequest(f"input {name!r}: unknown datatype {datatype!r}", param=name)
    size = struct.calcsize("<" + STRUCT[datatype])
    if len(raw) % size:
        raise BadRequest(f"input {name!r}: {len(raw)} bytes is not a whole number of {datatype}", param=name)
    return list(struct.unpack(f"<{len(raw) // size}{STRUCT[datatype]}", raw))


def encode_raw(datatype: str, values: list) -> bytes:
    if datatype == "BYTES":
        return serialize_bytes(values)
    return struct.pack(f"<{len(values)}{STRUCT[datatype]}", *values)


def _flatten(data) -> list:
    if isinstance(data, list):
        return [x for item in data for x in _flatten(item)]
    return [data]


def _element_count(shape: list[int]) -> int | None:
    return None if any(d < 0 for d in shape) else math.prod(shape)


def _checked(name: str, datatype: str, shape: Any, values: list, parameters: dict) -> Tensor:
    if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
        raise BadRequest(f"input {name!r}: shape must be a list of integers", param=name)
    count = _element_count(shape)
    if count is not None and count != len(values):
        raise BadRequest(f"input {name!r}: shape {shape} holds {count} element(s), the data has {len(values)}",
                         param=name)
    return Tensor(name, datatype, shape, values, parameters)


def _from_contents(name: str, datatype: str, contents: Any) -> list:
    key = CONTENTS.get(datatype)
    if not isinstance(contents, dict) or key is None or key not in contents:
        raise BadRequest(f"input {name!r}: contents for a {datatype} tensor go in `{key or 'a typed field'}`",
                         param=name)
    values = contents[key]
    if not isinstance(values, list):
        raise BadRequest(f"input {name!r}: `{key}` must be a list", param=name)
    if datatype == "BYTES":
        try:
            return [base64.b64decode(v, validate=True) for v in values]
        except (binascii.Error, TypeError, ValueError) as exc:
            raise BadRequest(f"input {name!r}: bytes_contents must be base64 ({exc})", param=name) from exc
    if datatype in INTEGER:  # proto JSON writes int64 as strings
        values = [int(v) if isinstance(v, str) and v.lstrip("-").isdigit() else v for v in values]
    return _json_data(name, datatype, values)


def _json_data(name: str, datatype: str, values: list) -> list:
    """JSON `data` elements, checked against the datatype (BYTES as UTF-8 text)."""
    if datatype not in STRUCT and datatype != "BYTES":
        raise BadRequest(f"input {name!r}: unknown datatype {datatype!r}", param=name)
    if datatype in INTEGER:  # JSON has one number type: 3.0 is the integer 3 (as JSON Schema reads it)
        values = [int(v) if isinstance(v, float) and v.is_integer() else v for v in values]
    ok = {"BYTES": lambda v: isinstance(v, str), "BOOL": lambda v: isinstance(v, bool)}.get(datatype)
    if ok is None:
        number = (int,) if datatype in INTEGER else (int, float)
        ok = lambda v: isinstance(v, number) and not isinstance(v, bool)  # noqa: E731
    for v in values:
        if not ok(v):
            raise BadRequest(f"input {name!r}: {json.dumps(v)[:40]} is not a {datatype} element", param=name)
    return [v.encode() for v in values] if datatype == "BYTES" else values


def rest_inputs(body: dict, binary: bytes) -> tuple[list[Tensor], str]:
    """(tensors, form) of a REST infer request; form is "data", "contents" or "binary" (first input's)."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("`inputs` must be a non-empty list of tensors", param="inputs")
    tensors, forms, offset = [], [], 0
    for i, inp in enumerate(inputs):
        if not isinstance(inp, dict) or not isinstance(inp.get("name"), str):
            raise BadRequest(f"inputs[{i}] needs a `name`", param="inputs")
        name, datatype = inp["name"], inp.get("datatype")
        if not isinstance(datatype, str):
            raise BadRequest(f"input {name!r} needs a `datatype`", param=name)
        params = inp.get("parameters") or {}
        if "binary_data_size" in params:
            size = params["binary_data_size"]
            if not isinstance(size, int) or offset + size > len(binary):
                raise BadRequest(f"input {name!r}: binary_data_size {size} runs past the request's binary data",
                                 param=name)
            values, offset = decode_raw(datatype, binary[offset:offset + size], name), offset + size
            forms.append("binary")
        elif "contents" in inp:
            values = _from_contents(name, datatype, inp["contents"])
            forms.append("contents")
        elif "data" in inp:
            values = _json_data(name, datatype, _flatten(inp["data"]))
            forms.append("data")
        else:
            raise BadRequest(f"input {name!r} has no data (`data`, `contents` or binary data)", param=name)
        tensors.append(_checked(name, datatype, inp.get("shape"), values, params))
    return tensors, forms[0]


def grpc_inputs(request) -> tuple[list[Tensor], str]:
    """(tensors, form) of a gRPC ModelInferRequest; form is "raw" or "contents"."""
    if not request.inputs:
        raise BadRequest("the request has no inputs", param="inputs")
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise BadRequest("raw_input_contents must hold one entry per input", param="inputs")
    tensors = []
    for i, inp in enumerate(request.inputs):
        if raw:
            values = decode_raw(inp.datatype, raw[i], inp.name)
        else:
            key = CONTENTS.get(inp.datatype)
            if key is None:
                raise BadRequest(f"input {inp.name!r}: {inp.datatype} has no contents field; send raw contents",
                                 param=inp.name)
            values = list(getattr(inp.contents, key))
        tensors.append(_checked(inp.name, inp.datatype, list(inp.shape), values, grpc_parameters(inp.parameters)))
    return tensors, "raw" if raw else "contents"


def grpc_parameters(params) -> dict:
    return {k: getattr(v, v.WhichOneof("parameter_choice")) for k, v in params.items() if v.WhichOneof("parameter_choice")}


def rest_output(name: str, datatype: str, values: list, form: str) -> tuple[dict, bytes]:
    """A REST output tensor (JSON part, binary part) in the given form."""
    out: dict = {"name": name, "datatype": datatype, "shape": [len(values)]}
    if form == "binary":
        blob = encode_raw(datatype, values)
        out["parameters"] = {"binary_data_size": len(blob)}
        return out, blob
    if form == "contents":
        encoded = [base64.b64encode(v).decode() for v in values] if datatype == "BYTES" else values
        out["contents"] = {CONTENTS[datatype]: encoded}
        return out, b""
    out["data"] = [v.decode(errors="replace") for v in values] if datatype == "BYTES" else values
    return out, b""
