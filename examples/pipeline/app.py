"""Workers calling workers: `context.call` goes back through the gateway (keys, metrics and load
balancing apply), and calls nest: summarize -> tokenize -> analyze.

    launch run examples.pipeline.app:app --port 8080
    curl -s localhost:8080/v2/models/summarize/infer \
        -d '{"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":["the cat saw the dog"]}]}'
"""
from collections import Counter

from launcher.worker import AnyServe, Context, ModelInferRequest, ModelInferResponse

app = AnyServe()


def tokenize(text: str) -> list[str]:
    return text.lower().split()


def build_response(result: ModelInferResponse) -> ModelInferResponse:
    """Pass the called capability's outputs on as this handler's answer."""
    response = ModelInferResponse(model_name=result.model_name, id=result.id)
    for out in result.outputs:
        response.add_output(name=out.name, datatype=out.datatype, shape=out.shape).contents = out.contents
    return response


# The anyserve README's handler, verbatim.
@app.capability(type="tokenize")
def handler(request: ModelInferRequest, context: Context) -> ModelInferResponse:
    # 处理输入
    text = request.get_input("text").bytes_contents[0].decode()
    tokens = tokenize(text)

    # 调用其他服务
    result = context.call(
        model_name="analyze",
        capability={"type": "analyze"},  # 通过 API Server 路由
        inputs={"tokens": [",".join(tokens)]}
    )

    return build_response(result)


@app.capability(type="analyze")
def analyze(request: ModelInferRequest) -> ModelInferResponse:
    """Token statistics of a comma-separated token list."""
    tokens = request.get_input("tokens").bytes_contents[0].decode().split(",")
    counts = Counter(t for t in tokens if t)
    response = ModelInferResponse(model_name=request.model_name, id=request.id)
    response.add_output(name="token_count", datatype="INT64", shape=[1], int64_contents=[sum(counts.values())])
    response.add_output(name="top_token", datatype="BYTES", shape=[1],
                        bytes_contents=[counts.most_common(1)[0][0].encode() if counts else b""])
    return response


@app.capability(type="summarize")
def summarize(request: ModelInferRequest, context: Context) -> ModelInferResponse:
    """A one-line report on `text`, from tokenize, which itself calls analyze (nested calls)."""
    text = request.get_input("text").bytes_contents[0].decode()
    stats = context.call(model_name="tokenize", capability={"type": "tokenize"}, inputs={"text": [text]})
    report = f"{stats['token_count'][0]} tokens, most often {stats['top_token'][0].decode()!r}"
    response = ModelInferResponse(model_name=request.model_name, id=request.id)
    response.add_output(name="report", datatype="BYTES", shape=[1], bytes_contents=[report.encode()])
    return response
