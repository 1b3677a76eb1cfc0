"""The built-in llama.cpp worker of the anyserve llama.cpp document: `LlamaCppEngine` (llama-cpp-python
on launcher's own build, no second compile) with the document's handlers, a completion capability and
its streaming form.

    LAUNCHER_LLAMACPP_MODEL=embedded:gemma3-270m LAUNCHER_LLAMACPP_NAME=gemma-py \\
        launch run launcher.worker.builtins.llamacpp:create_app --factory

or in a config, next to llama-server models:

    workers:
      - app: launcher.worker.builtins.llamacpp:create_app
        factory: true
        env: {LAUNCHER_LLAMACPP_MODEL: embedded:gemma3-270m, LAUNCHER_LLAMACPP_NAME: gemma-py}

`launch serve` keeps llama-server as its engine (parallel slots, faster); this worker shows how a
Python engine composes with the rest. A llama.cpp context runs one sequence at a time, so requests to
one worker process queue on the engine's lock.
"""
from __future__ import annotations

import os

from ...bindings.engine import LlamaCppConfig, LlamaCppEngine
from ...models.embedded import EMBEDDED, ensure
from ..app import App
from ..messages import (
    InferOutputTensor,
    InferTensorContents,
    ModelInferRequest,
    ModelInferResponse,
    ModelStreamInferResponse,
)
from ..server import serve_app

__all__ = ["LlamaCppConfig", "LlamaCppEngine", "create_handlers", "create_app", "create_server", "extract_prompt",
           "extract_generation_params"]

CONFIG_ENV = "LAUNCHER_LLAMACPP_CONFIG"   # a YAML file of LlamaCppConfig's keys
MODEL_ENV = "LAUNCHER_LLAMACPP_MODEL"     # a GGUF path or embedded:NAME (overrides the file's model_path)
NAME_ENV = "LAUNCHER_LLAMACPP_NAME"       # the capability's `model` (overrides the file's name)

# The document's input table: name -> converter (prompt/text_input and stop are read apart).
PARAMS = {"max_tokens": int, "max_new_tokens": int, "temperature": float, "top_p": float, "top_k": int,
          "repeat_penalty": float}


def create_handlers(app: App, config: LlamaCppConfig, engine: LlamaCppEngine) -> None:
    """Register the document's handlers on `app`."""

    @app.capability(type="completion", model=config.name)
    def completion_handler(request: ModelInferRequest, context) -> ModelInferResponse:
        text = engine.generate(extract_prompt(request), **extract_generation_params(request))
        return build_response(request, text, config.name)

    @app.capability(type="completion", model=config.name, stream=True)
    def completion_stream_handler(request: ModelInferRequest, context, stream) -> None:
        for token in engine.generate_stream(extract_prompt(request), **extract_generation_params(request)):
            stream.send(build_stream_response(request, token, config.name, is_last=False))
        stream.send(build_stream_response(request, "", config.name, is_last=True))


def extract_prompt(request: ModelInferRequest) -> str:
    for inp in request.inputs:
        if inp.name in ("prompt", "text_input") and inp.contents.bytes_contents:
            return inp.contents.bytes_contents[0].decode("utf-8")
    raise ValueError("No prompt found in request. Expected 'prompt' or 'text_input' input.")


def extract_generation_params(request: ModelInferRequest) -> dict:
    params = {}
    for inp in request.inputs:
        if inp.name in PARAMS and inp.values:
            params[inp.name] = PARAMS[inp.name](inp.values[0])
        elif inp.name == "stop" and inp.contents.bytes_contents:
            params["stop"] = [s.decode("utf-8") for s in inp.contents.bytes_contents]
    return params


def _text_tensor(name: str, data: bytes) -> InferOutputTensor:
    return InferOutputTensor(name=name, datatype="BYTES", shape=[1], contents=InferTensorContents(bytes_contents=[data]))


def build_response(request: ModelInferRequest, text: str, model_name: str) -> ModelInferResponse:
    return ModelInferResponse(model_name=model_name, id=request.id,
                              outputs=[_text_tensor("text_output", text.encode("utf-8"))])


def build_stream_response(request: ModelInferRequest, token: str, model_name: str,
                          is_last: bool) -> ModelStreamInferResponse:
    return ModelStreamInferResponse(error_message="", infer_response=ModelInferResponse(
        model_name=model_name, id=request.id,
        outputs=[_text_tensor("text_output", token.encode("utf-8")),
                 _text_tensor("finish_reason", b"stop" if is_last else b"")]))


def config_from_env() -> LlamaCppConfig:
    config = LlamaCppConfig.from_yaml(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else LlamaCppConfig()
    model = os.environ.get(MODEL_ENV)
    if model:
        config.model_path = str(ensure(model.removeprefix("embedded:"))) if model.startswith("embedded:") \
            and model.removeprefix("embedded:") in EMBEDDED else model
    config.name = os.environ.get(NAME_ENV) or config.name
    config.validate()
    return config


def create_app() -> App:
    """The factory `launch run ...llamacpp:create_app --factory` calls: load the model, register handlers."""
    config = config_from_env()
    engine = LlamaCppEngine(config)
    engine.load()
    app = App()
    create_handlers(app, config, engine)
    return app


class LlamaCppServer:
    """The document's server object: `engine` to use directly, `run()` to serve it alone (blocks)."""

    def __init__(self, config: LlamaCppConfig):
        self.config = config
        self.app = App()
        self.engine = LlamaCppEngine(config)

    def run(self) -> None:
        self.engine.load()
        create_handlers(self.app, self.config, self.engine)
        serve_app(self.app, port=self.config.port)


def create_server(config: LlamaCppConfig) -> LlamaCppServer:
    return LlamaCppServer(config)
