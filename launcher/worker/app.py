"""A worker application: handlers registered by capability, as anyserve's `AnyServe` does.

    app = App()                                   # also importable as AnyServe

    @app.capability(type="echo")
    def echo(request: ModelInferRequest) -> ModelInferResponse: ...

    @app.capability(type="chat", stream=True)
    def chat(request, context, stream):           # a streaming handler sends responses
        stream.send(ModelStreamInferResponse(infer_response=...))

A handler takes the request, and optionally a Context (for `context.call`) and, when streaming, a
Stream. Handlers are plain functions: the worker server runs them in threads.
"""
from __future__ import annotations

import inspect
import queue
from dataclasses import dataclass
from typing import Any, Callable

from ..capabilities import matches
from .messages import (
    ModelInferResponse,
    ModelStreamInferResponse,
    response_from_json,
    response_from_proto,
    response_of_outputs,
)


@dataclass(frozen=True)
class Handler:
    capability: dict
    func: Callable
    stream: bool
    takes_context: bool


class App:
    def __init__(self) -> None:
        self.handlers: list[Handler] = []

    def capability(self, stream: bool = False, **capability: Any):
        def register(func: Callable) -> Callable:
            params = [p for p in inspect.signature(func).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            takes_context = len(params) >= (3 if stream else 2)
            self.handlers.append(Handler(dict(capability), func, stream, takes_context))
            return func
        return register

    def capabilities(self) -> list[dict]:
        """What this app serves, each capability once (a streaming and a plain handler may share one)."""
        out: list[dict] = []
        for h in self.handlers:
            if h.capability not in out:
                out.append(dict(h.capability))
        return out

    def find(self, query: dict, stream: bool) -> Handler | None:
        """The first handler of the wanted kind whose capability matches; else one of the other kind."""
        hits = [h for h in self.handlers if matches(h.capability, query)]
        return next((h for h in hits if h.stream == stream), None) or (hits[0] if hits else None)


AnyServe = App  # the anyserve documents' name


class Context:
    """What a handler may use besides its request: `call` another capability through the gateway
    (auth, metrics and load balancing apply; calls may nest)."""

    def __init__(self, call: Callable[..., ModelInferResponse], capability: dict | None = None,
                 replica_id: str | None = None):
        self._call, self.capability, self.replica_id = call, capability or {}, replica_id

    def call(self, model_name: str | None = None, capability: dict | None = None, inputs: dict | None = None,
             **kwargs: Any) -> ModelInferResponse:
        return self._call(model_name=model_name, capability=capability or {}, inputs=inputs or {}, **kwargs)


class Stream:
    """Where a streaming handler sends its responses (consumed by the worker server as they come)."""
    _END = object()

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()
        self.closed = False

    def send(self, response: Any) -> None:
        """A ModelStreamInferResponse (launcher's, or its protobuf form), a ModelInferResponse, or a dict of
        outputs (`{"token": ["hi"]}`)."""
        if self.closed:
            raise RuntimeError("the stream is closed")
        self._queue.put(_stream_item(response))

    def error(self, message: str) -> None:
        self._queue.put(ModelStreamInferResponse(error_message=message))
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put(self._END)

    def get(self, timeout: float | None = None):
        """The next response, or None when the stream is closed (raises queue.Empty on timeout)."""
        item = self._queue.get(timeout=timeout)
        return None if item is self._END else item


def _stream_item(response: Any) -> ModelStreamInferResponse:
    if isinstance(response, ModelStreamInferResponse):
        return response
    if isinstance(response, ModelInferResponse):
        return ModelStreamInferResponse(infer_response=response)
    if hasattr(response, "infer_response") and hasattr(response, "SerializeToString"):  # protobuf
        inner = response.infer_response if response.HasField("infer_response") else None
        return ModelStreamInferResponse(response.error_message, response_from_proto(inner) if inner else None)
    if isinstance(response, dict) and ("infer_response" in response or "error_message" in response):
        inner = response.get("infer_response")
        return ModelStreamInferResponse(response.get("error_message", ""),
                                        response_from_json(inner) if isinstance(inner, dict) else inner)
    if isinstance(response, dict):  # outputs by name
        return ModelStreamInferResponse(infer_response=response_of_outputs(response))
    raise TypeError(f"stream.send got {type(response).__name__}; send a ModelStreamInferResponse")
