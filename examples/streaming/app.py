"""Server streaming: one request, many responses, each sent as soon as it is made.

    launch run examples.streaming.app:app --port 8080 --grpc-port 8081
    curl -N localhost:8080/v2/models/words/infer_stream \
        -d '{"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":["one two three"]}]}'
"""
import time

from launcher.worker import AnyServe, Context, ModelInferRequest, ModelInferResponse, ModelStreamInferResponse

app = AnyServe()


def _word(request: ModelInferRequest, word: str, last: bool) -> ModelStreamInferResponse:
    response = ModelInferResponse(model_name=request.model_name, id=request.id)
    response.add_output(name="text_output", datatype="BYTES", shape=[1], bytes_contents=[word.encode()])
    response.add_output(name="finish_reason", datatype="BYTES", shape=[1], bytes_contents=[b"stop" if last else b""])
    return ModelStreamInferResponse(infer_response=response)


@app.capability(type="words", stream=True)
def words_handler(request: ModelInferRequest, context: Context, stream) -> None:
    """The words of input `text`, one response each (parameter `delay_ms` paces them)."""
    text = request.get_input("text").bytes_contents[0].decode()
    delay = float(request.parameters.get("delay_ms", 0)) / 1000
    words = text.split()
    for i, word in enumerate(words):
        if delay:
            time.sleep(delay)
        stream.send(_word(request, word, last=i == len(words) - 1))


@app.capability(type="count", stream=True)
def count_handler(request: ModelInferRequest, stream) -> None:
    """0, 1, ... n-1 for INT64 input `n`."""
    for i in range(int(request.get_input("n").int64_contents[0])):
        response = ModelInferResponse(model_name=request.model_name, id=request.id)
        response.add_output(name="number", datatype="INT64", shape=[1], int64_contents=[i])
        stream.send(ModelStreamInferResponse(infer_response=response))
