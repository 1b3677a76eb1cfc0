"""The gRPC service `inference.GRPCInferenceService` by its wire name, over launcher's own message types.

The calls are those of KServe's grpc_predict_v2.proto plus Triton's ModelStreamInfer; one table serves
the server (registration) and clients (stub: tests, benchmarks, the worker SDK).
"""
from __future__ import annotations

import grpc

from . import grpc_predict_v2_pb2 as pb

SERVICE = "inference.GRPCInferenceService"
# name -> (request, response, streaming both ways)
METHODS = {
    "ServerLive": (pb.ServerLiveRequest, pb.ServerLiveResponse, False),
    "ServerReady": (pb.ServerReadyRequest, pb.ServerReadyResponse, False),
    "ModelReady": (pb.ModelReadyRequest, pb.ModelReadyResponse, False),
    "ServerMetadata": (pb.ServerMetadataRequest, pb.ServerMetadataResponse, False),
    "ModelMetadata": (pb.ModelMetadataRequest, pb.ModelMetadataResponse, False),
    "ModelInfer": (pb.ModelInferRequest, pb.ModelInferResponse, False),
    "ModelStreamInfer": (pb.ModelInferRequest, pb.ModelStreamInferResponse, True),
}


def path(method: str) -> str:
    return f"/{SERVICE}/{method}"


def add_to_server(servicer, server) -> None:
    """Register `servicer`'s methods (named as in METHODS) under the service's wire name."""
    handlers = {}
    for name, (request, response, streaming) in METHODS.items():
        make = grpc.stream_stream_rpc_method_handler if streaming else grpc.unary_unary_rpc_method_handler
        handlers[name] = make(getattr(servicer, name), request_deserializer=request.FromString,
                              response_serializer=response.SerializeToString)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


class Stub:
    """A client of the service on a channel (grpc or grpc.aio): `stub.ModelInfer(request)` and so on."""

    def __init__(self, channel):
        for name, (request, response, streaming) in METHODS.items():
            make = channel.stream_stream if streaming else channel.unary_unary
            setattr(self, name, make(path(name), request_serializer=request.SerializeToString,
                                     response_deserializer=response.FromString))
