"""A KServe v2 client for capabilities, as anyserve's is:

    client = Client(endpoint="localhost:8001")                    # direct: gRPC (host:port) or REST (http://...)
    client = Client(api_server="http://localhost:8080", capability={"type": "echo"})   # discovery via /route
    result = client.infer("echo", {"text": ["hello"]})             # outputs by name: result["output_text"]
    for part in client.infer_stream("chat", {"prompt": ["hi"]}): ...

The capability travels with each request (X-Capability), so the gateway routes by it; `context.call` in a
worker is this client pointed at the gateway that started the worker.
"""
from __future__ import annotations

import json
import os
from typing import Iterator
from urllib.parse import urlencode

import grpc
import httpx

from ..errors import LauncherError
from ..plan.model import WORKER_GATEWAY_ENV, WORKER_KEY_ENV
from ..protocols.kserve.service import Stub
from ..protocols.kserve.wire import proto_request
from .messages import ModelInferResponse, inputs_from_values, response_from_json, response_from_proto


class CallError(LauncherError):
    """The call reached no handler, or the handler failed; the message says which."""


def capability_header(capability: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in capability.items())


class Client:
    def __init__(self, endpoint: str | None = None, api_server: str | None = None, capability: dict | None = None,
                 api_key: str | None = None, timeout: float = 300.0):
        if bool(endpoint) == bool(api_server):
            raise ValueError("give either endpoint (direct) or api_server (discovery)")
        if api_server and not capability:
            raise ValueError("discovery (api_server) needs a capability to route by")
        self.endpoint, self.api_server = endpoint, api_server
        self.capability = dict(capability or {})
        self.api_key, self.timeout = api_key, timeout
        self.replica_id: str | None = None
        self._channel = None

    # --- discovery ----------------------------------------------------------------------------
    def _target(self) -> str:
        if self.endpoint is None:
            resp = httpx.get(f"{self.api_server.rstrip('/')}/route?{urlencode(self.capability)}",
                             headers=self._headers(), timeout=10)
            if resp.status_code == 404:
                raise CallError(f"no replica serves {self.capability}: {resp.text[:300]}")
            resp.raise_for_status()
            data = resp.json()
            self.endpoint, self.replica_id = data["endpoint"], data.get("replica_id")
        return self.endpoint

    def _headers(self, capability: dict | None = None) -> dict:
        headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        query = capability if capability is not None else self.capability
        if query:
            headers["x-capability"] = capability_header(query)
        return headers

    # --- calls --------------------------------------------------------------------------------
    def infer(self, model_name: str, inputs: dict, capability: dict | None = None,
              parameters: dict | None = None) -> ModelInferResponse:
        target = self._target()
        body = {"inputs": inputs_from_values(inputs), "parameters": dict(parameters or {})}
        if target.startswith(("http://", "https://")):
            resp = httpx.post(f"{target.rstrip('/')}/v2/models/{model_name}/infer", json=body,
                              headers=self._headers(capability), timeout=self.timeout)
            data = _json(resp)
            if resp.status_code != 200:
                raise CallError(f"{model_name}: {data.get('error', resp.text[:300])}")
            return response_from_json(data)
        try:
            return response_from_proto(self._stub().ModelInfer(proto_request(model_name, body),
                                                               metadata=self._metadata(capability),
                                                               timeout=self.timeout))
        except grpc.RpcError as exc:
            raise CallError(f"{model_name}: {exc.details()}") from exc

    def infer_stream(self, model_name: str, inputs: dict, capability: dict | None = None,
                     parameters: dict | None = None) -> Iterator[ModelInferResponse]:
        target = self._target()
        body = {"inputs": inputs_from_values(inputs), "parameters": dict(parameters or {})}
        if target.startswith(("http://", "https://")):
            with httpx.stream("POST", f"{target.rstrip('/')}/v2/models/{model_name}/infer_stream", json=body,
                              headers=self._headers(capability), timeout=self.timeout) as resp:
                if resp.status_code != 200:
                    raise CallError(f"{model_name}: {_json(resp.read() and resp).get('error', resp.text[:300])}")
                for line in resp.iter_lines():
                    if line.startswith("data: "):
                        event = json.loads(line[6:])
                        if event.get("error_message"):
                            raise CallError(f"{model_name}: {event['error_message']}")
                        if event.get("infer_response"):
                            yield response_from_json(event["infer_response"])
            return
        try:
            for item in self._stub().ModelStreamInfer(iter([proto_request(model_name, body)]),
                                                      metadata=self._metadata(capability), timeout=self.timeout):
                if item.error_message:
                    raise CallError(f"{model_name}: {item.error_message}")
                yield response_from_proto(item.infer_response)
        except grpc.RpcError as exc:
            raise CallError(f"{model_name}: {exc.details()}") from exc

    def _metadata(self, capability: dict | None) -> list[tuple[str, str]]:
        return list(self._headers(capability).items())

    def _stub(self) -> Stub:
        if self._channel is None:
            self._channel = grpc.insecure_channel(self._target())
        return Stub(self._channel)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _json(resp) -> dict:
    try:
        data = resp.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def gateway_call(model_name: str | None = None, capability: dict | None = None, inputs: dict | None = None,
                 **kwargs) -> ModelInferResponse:
    """`context.call` in a worker: through the gateway that started it (LAUNCHER_GATEWAY)."""
    url = os.environ.get(WORKER_GATEWAY_ENV)
    if not url:
        raise CallError("context.call needs the gateway: this worker was not started by launch")
    capability = dict(capability or {})
    name = model_name or capability.get("type")
    if not name:
        raise CallError("context.call needs a model_name or a capability with a type")
    client = Client(endpoint=url, api_key=os.environ.get(WORKER_KEY_ENV) or None)
    return client.infer(name, inputs or {}, capability=capability or None, parameters=kwargs.get("parameters"))


AnyServeClient = Client  # the name the anyserve llama.cpp document's client example uses
