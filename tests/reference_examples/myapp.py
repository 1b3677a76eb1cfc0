# myapp.py
from launcher.worker import AnyServe, ModelInferRequest, ModelInferResponse

def create_app():
    """Factory 函数 - 每个 Worker 进程调用一次"""
    app = AnyServe()

    # 初始化资源（如加载模型）
    model = load_my_model()

    @app.capability(type="inference")
    def inference_handler(request: ModelInferRequest) -> ModelInferResponse:
        # 使用已加载的 model
        result = model.predict(...)
        return build_response(result)

    return app


# Above: the anyserve README's factory example, verbatim but for the import line. Below: the two helpers
# it leaves to the reader, so that it runs (`launch run myapp:create_app --factory --port 8000 --workers 2`).
import os  # noqa: E402


class _Model:
    def __init__(self):
        self.pid = os.getpid()  # loaded once per worker process

    def predict(self, _):
        return {"answer": [42], "pid": [self.pid]}


def load_my_model():
    return _Model()


def build_response(result: dict) -> ModelInferResponse:
    response = ModelInferResponse(model_name="inference")
    response.add_output(name="answer", datatype="INT64", shape=[1], int64_contents=result["answer"])
    response.add_output(name="pid", datatype="INT64", shape=[1], int64_contents=result["pid"])
    return response
