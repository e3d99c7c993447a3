"""gRPC server reflection v1 as well as v1alpha.

grpcio-reflection ships only `grpc.reflection.v1alpha`; tools that speak only v1 (newer grpcurl,
Postman, grpcui) get UNIMPLEMENTED from it. The v1 protocol is the same messages under the package
`grpc.reflection.v1` (vendored as proto/node/pb/reflection_v1.proto, generated into node/pb), so the
v1 servicer here runs grpcio-reflection's own v1alpha logic, converting each message through its wire
bytes, which the two versions share.
"""
from __future__ import annotations

from typing import Iterable

import grpc
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha import reflection_pb2 as alpha

from .pb import reflection_v1_pb2 as v1
from .pb import reflection_v1_pb2_grpc as v1_grpc

SERVICE_NAME = v1.DESCRIPTOR.services_by_name["ServerReflection"].full_name  # grpc.reflection.v1.ServerReflection


class ReflectionV1Servicer(v1_grpc.ServerReflectionServicer):
    def __init__(self, service_names: Iterable[str]) -> None:
        self._alpha = reflection.ReflectionServicer(tuple(service_names))

    def ServerReflectionInfo(self, request_iterator, context):
        requests = (alpha.ServerReflectionRequest.FromString(r.SerializeToString()) for r in request_iterator)
        for response in self._alpha.ServerReflectionInfo(requests, context):
            yield v1.ServerReflectionResponse.FromString(response.SerializeToString())


def enable(service_names: Iterable[str], server: grpc.Server) -> None:
    """Serve reflection v1 and v1alpha for `service_names` (both reflection services are listed too)."""
    names = (*service_names, SERVICE_NAME, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    v1_grpc.add_ServerReflectionServicer_to_server(ReflectionV1Servicer(names), server)
