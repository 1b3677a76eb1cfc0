"""Basic handlers: echo (the anyserve README's, verbatim but for the import line) and add.

    launch run examples.basic.app:app --port 8080
    curl -s localhost:8080/v2/models/echo/infer -d '{"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":["hi"]}]}'
"""
from launcher.worker import AnyServe, ModelInferRequest, ModelInferResponse

app = AnyServe()

@app.capability(type="echo")
def echo_handler(request: ModelInferRequest) -> ModelInferResponse:
    response = ModelInferResponse(
        model_name=request.model_name,
        id=request.id
    )
    for inp in request.inputs:
        out = response.add_output(
            name=f"output_{inp.name}",
            datatype=inp.datatype,
            shape=inp.shape
        )
        out.contents = inp.contents
    return response


@app.capability(type="add")
def add_handler(request: ModelInferRequest) -> ModelInferResponse:
    """Element-wise sum of inputs `a` and `b` (INT64 or FP32, same shape)."""
    a, b = request.get_input("a"), request.get_input("b")
    if a is None or b is None:
        raise ValueError("add needs inputs `a` and `b`")
    if len(a.values) != len(b.values):
        raise ValueError(f"add: `a` has {len(a.values)} elements, `b` has {len(b.values)}")
    total = [x + y for x, y in zip(a.values, b.values)]
    response = ModelInferResponse(model_name=request.model_name, id=request.id)
    datatype = "FP32" if any(isinstance(v, float) for v in total) else "INT64"
    out = response.add_output(name="sum", datatype=datatype, shape=a.shape)
    if datatype == "FP32":
        out.contents.fp32_contents = total
    else:
        out.contents.int64_contents = total
    return response
