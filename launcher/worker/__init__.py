"""Python workers: user code served by capability behind launcher's gateway, as anyserve's are.

    from launcher.worker import App, ModelInferRequest, ModelInferResponse, Context

    app = App()

    @app.capability(type="echo")
    def echo(request: ModelInferRequest) -> ModelInferResponse: ...

    launch run mymodule:app --port 8080           # or a config's `workers:` section

app.py: the App and its decorator; messages.py: the request/response objects; server.py: one worker
process (KServe v2 REST on an internal port); client.py: Client and `context.call`; __main__.py: the
process launcher starts; builtins/: the built-in llama.cpp worker.
"""
from .app import AnyServe, App, Context, Handler, Stream
from .client import AnyServeClient, CallError, Client
from .messages import (
    InferInputTensor,
    InferOutputTensor,
    InferTensorContents,
    ModelInferRequest,
    ModelInferResponse,
    ModelStreamInferResponse,
)

__all__ = ["App", "AnyServe", "Context", "Stream", "Handler", "Client", "AnyServeClient", "CallError",
           "ModelInferRequest", "ModelInferResponse", "ModelStreamInferResponse", "InferInputTensor",
           "InferOutputTensor", "InferTensorContents"]
