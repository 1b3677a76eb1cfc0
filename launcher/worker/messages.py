"""The KServe v2 messages a worker's handlers see and build, shaped as the anyserve documents use them:

    text = request.get_input("text").bytes_contents[0].decode()
    response = ModelInferResponse(model_name=request.model_name, id=request.id)
    out = response.add_output(name="output_text", datatype=inp.datatype, shape=inp.shape)
    out.contents = inp.contents

Conversions to and from KServe REST JSON and launcher's protobuf messages live here too, so the
worker server, the client and `context.call` share them.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field, fields
from typing import Any

from ..protocols.kserve.tensors import CONTENTS, Tensor, rest_output

FIELDS = ("bool_contents", "int_contents", "int64_contents", "uint_contents", "uint64_contents", "fp32_contents",
          "fp64_contents", "bytes_contents")


@dataclass
class InferTensorContents:
    bool_contents: list = field(default_factory=list)
    int_contents: list = field(default_factory=list)
    int64_contents: list = field(default_factory=list)
    uint_contents: list = field(default_factory=list)
    uint64_contents: list = field(default_factory=list)
    fp32_contents: list = field(default_factory=list)
    fp64_contents: list = field(default_factory=list)
    bytes_contents: list = field(default_factory=list)


@dataclass
class _Tensor:
    name: str
    datatype: str
    shape: list
    contents: InferTensorContents = field(default_factory=InferTensorContents)
    parameters: dict = field(default_factory=dict)

    @property
    def values(self) -> list:
        """The elements, from the contents field of this datatype (or any that holds data)."""
        key = CONTENTS.get(self.datatype)
        if key and getattr(self.contents, key):
            return list(getattr(self.contents, key))
        return next((list(getattr(self.contents, f)) for f in FIELDS if getattr(self.contents, f)), [])

    @property
    def bytes_contents(self) -> list:
        return self.contents.bytes_contents

    @property
    def int_contents(self) -> list:
        return self.contents.int_contents

    @property
    def int64_contents(self) -> list:
        return self.contents.int64_contents

    @property
    def fp32_contents(self) -> list:
        return self.contents.fp32_contents


class InferInputTensor(_Tensor):
    pass


class InferOutputTensor(_Tensor):
    pass


def contents_of(datatype: str, values: list) -> InferTensorContents:
    contents = InferTensorContents()
    setattr(contents, CONTENTS.get(datatype, "bytes_contents"), list(values))
    return contents


def _kwargs_contents(kwargs: dict) -> InferTensorContents:
    return InferTensorContents(**{k: list(v) for k, v in kwargs.items() if k in FIELDS and v is not None})


class Outputs(list):
    """A response's output tensors, also readable by name as anyserve's client shows them:
    `response.outputs["text_output"]` is that output's value, the element itself when it holds one
    (bytes as text when they are UTF-8), else the list of elements."""

    def __getitem__(self, key):
        if not isinstance(key, str):
            return super().__getitem__(key)
        tensor = next((t for t in self if t.name == key), None)
        if tensor is None:
            raise KeyError(key)
        values = [_text(v) for v in tensor.values]
        return values[0] if len(values) == 1 else values


def _text(value):
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value
    return value


class ModelInferRequest:
    def __init__(self, model_name: str = "", id: str = "", model_version: str = "", parameters: dict | None = None):
        self.model_name, self.id, self.model_version = model_name, id, model_version
        self.parameters = dict(parameters or {})
        self.inputs: list[InferInputTensor] = []
        self.outputs: list[dict] = []  # outputs the caller asked for

    def add_input(self, name: str, datatype: str, shape: list, parameters: dict | None = None,
                  **contents) -> InferInputTensor:
        tensor = InferInputTensor(name, datatype, list(shape), _kwargs_contents(contents), dict(parameters or {}))
        self.inputs.append(tensor)
        return tensor

    def get_input(self, name: str) -> InferInputTensor | None:
        return next((t for t in self.inputs if t.name == name), None)


class ModelInferResponse:
    """A handler's answer; also what `context.call` and the Client return, readable as outputs by name:
    `result["report"]` is the list of the `report` output's elements."""
    InferOutputTensor = InferOutputTensor
    InferTensorContents = InferTensorContents

    def __init__(self, model_name: str = "", id: str = "", model_version: str = "", parameters: dict | None = None,
                 outputs: list | None = None, error: str | None = None):
        self.model_name, self.id, self.model_version = model_name, id, model_version
        self.parameters = dict(parameters or {})
        self.outputs: Outputs = Outputs(outputs or [])
        self.error = error

    def add_output(self, name: str, datatype: str, shape: list, parameters: dict | None = None,
                   **contents) -> InferOutputTensor:
        tensor = InferOutputTensor(name, datatype, list(shape), _kwargs_contents(contents), dict(parameters or {}))
        self.outputs.append(tensor)
        return tensor

    def get_output(self, name: str) -> InferOutputTensor | None:
        return next((t for t in self.outputs if t.name == name), None)

    def __getitem__(self, name: str) -> list:
        out = self.get_output(name)
        if out is None:
            raise KeyError(name)
        return out.values

    def __contains__(self, name: object) -> bool:
        return any(t.name == name for t in self.outputs)

    def keys(self) -> list[str]:
        return [t.name for t in self.outputs]

    def as_dict(self) -> dict[str, list]:
        return {t.name: t.values for t in self.outputs}

    def __repr__(self) -> str:
        return f"ModelInferResponse(model_name={self.model_name!r}, id={self.id!r}, outputs={self.as_dict()!r})"


@dataclass
class ModelStreamInferResponse:
    error_message: str = ""
    infer_response: ModelInferResponse | None = None


# --- conversions -----------------------------------------------------------------------------

def request_from_tensors(name: str, body: dict, tensors: list[Tensor]) -> ModelInferRequest:
    request = ModelInferRequest(name, str(body.get("id") or ""), str(body.get("model_version") or ""),
                                body.get("parameters") or {})
    for t in tensors:
        request.inputs.append(InferInputTensor(t.name, t.datatype, list(t.shape), contents_of(t.datatype, t.values),
                                               dict(t.parameters)))
    request.outputs = list(body.get("outputs") or [])
    return request


def _json_values(datatype: str, values: list) -> list:
    return [base64.b64encode(v).decode() for v in values] if datatype == "BYTES" else list(values)


def response_to_rest(response: ModelInferResponse, form: str = "contents", asked: dict | None = None,
                     binary_all: bool = False) -> tuple[dict, bytes]:
    """REST form of an answer (JSON part, binary part): outputs in the request's form (`data`, or
    `contents` with bytes in base64), binary where asked (binary tensor data extension). `asked` maps
    the output names a request listed to whether it wants them binary; None: every output."""
    out: dict = {"model_name": response.model_name, "id": response.id, "outputs": []}
    if response.model_version:
        out["model_version"] = response.model_version
    if response.parameters:
        out["parameters"] = response.parameters
    blobs = []
    for t in response.outputs:
        if asked is not None and t.name not in asked:
            continue
        binary = asked[t.name] if asked is not None else binary_all
        tensor, blob = rest_output(t.name, t.datatype, t.values, "binary" if binary else form)
        tensor["shape"] = list(t.shape) or tensor["shape"]
        out["outputs"].append(tensor)
        blobs.append(blob)
    return out, b"".join(blobs)


def response_from_json(data: dict) -> ModelInferResponse:
    """An answer in any REST form (`data` or `contents`) as a response object."""
    response = ModelInferResponse(data.get("model_name", ""), data.get("id", ""), data.get("model_version", ""),
                                  data.get("parameters") or {})
    for o in data.get("outputs") or []:
        datatype = o.get("datatype", "BYTES")
        if "contents" in o:
            values = o["contents"].get(CONTENTS.get(datatype, "bytes_contents"), [])
            if datatype == "BYTES":
                values = [base64.b64decode(v) for v in values]
        else:
            values = o.get("data") or []
            if datatype == "BYTES":
                values = [v.encode() if isinstance(v, str) else v for v in values]
        response.outputs.append(InferOutputTensor(o["name"], datatype, list(o.get("shape") or [len(values)]),
                                                  contents_of(datatype, values), o.get("parameters") or {}))
    return response


def response_from_proto(message) -> ModelInferResponse:
    """launcher's protobuf ModelInferResponse (handlers may build those) as a response object."""
    response = ModelInferResponse(message.model_name, message.id, message.model_version)
    for o in message.outputs:
        contents = InferTensorContents(**{f.name: list(getattr(o.contents, f.name)) for f in fields(InferTensorContents)})
        response.outputs.append(InferOutputTensor(o.name, o.datatype, list(o.shape), contents))
    return response


def inputs_from_values(inputs: dict[str, list]) -> list[dict]:
    """`{"text": ["hi"], "count": [3]}` as REST input tensors (contents form), datatypes from the values."""
    out = []
    for name, values in inputs.items():
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        first = values[0] if values else ""
        if isinstance(first, bool):
            datatype = "BOOL"
        elif isinstance(first, int):
            datatype = "INT64"
        elif isinstance(first, float):
            datatype = "FP32"
        else:
            datatype = "BYTES"
            values = [v.encode() if isinstance(v, str) else bytes(v) for v in values]
        out.append({"name": name, "datatype": datatype, "shape": [len(values)],
                    "contents": {CONTENTS[datatype]: _json_values(datatype, values)}})
    return out


def as_response(value: Any, request: ModelInferRequest) -> ModelInferResponse:
    """Whatever a handler returned, as a response: a response object, launcher's protobuf one, a dict of
    outputs, or text (the llama.cpp worker document returns `engine.generate(prompt)`, a str)."""
    if isinstance(value, ModelInferResponse):
        return value
    if hasattr(value, "outputs") and hasattr(value, "SerializeToString"):
        return response_from_proto(value)
    if isinstance(value, (str, bytes)):
        value = {"text_output": [value]}
    if isinstance(value, dict):
        return response_of_outputs(value, request.model_name, request.id)
    raise TypeError(f"a handler returned {type(value).__name__}; return a ModelInferResponse, a dict of outputs "
                    "or text")


def response_of_outputs(values: dict, model_name: str = "", id: str = "") -> ModelInferResponse:
    """`{"answer": [42], "text": ["hi"]}` as a response, datatypes from the values."""
    response = ModelInferResponse(model_name=model_name, id=id)
    for tensor in inputs_from_values(values):
        key = CONTENTS[tensor["datatype"]]
        data = tensor["contents"][key]
        if tensor["datatype"] == "BYTES":
            data = [base64.b64decode(v) for v in data]
        response.add_output(tensor["name"], tensor["datatype"], tensor["shape"], **{key: data})
    return response
