"""The HTTP/JSON face's routes, derived from the proto service descriptors.

One route per RPC, `POST /v1/<service, lower case>/<Method>` (`/v1/mailbox/Send`,
`/v1/stats/Get`): adding an RPC to mailbox.proto or stats.proto adds its route, its
OpenAPI operation (node/api/openapi.py) and nothing else to write. The server
(node/api/http_server.py) and the OpenAPI generator both read this table, so the two
cannot disagree. No aiohttp here: the generator runs without it.
"""
from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from ..pb import mailbox_pb2, stats_pb2

PREFIX = "/v1"
OPENAPI_PATH = f"{PREFIX}/openapi.json"  # served without the token, like gRPC reflection
HEALTH_PATH = f"{PREFIX}/health"         # likewise, like gRPC health
SERVICES: tuple[ServiceDescriptor, ...] = (
    mailbox_pb2.DESCRIPTOR.services_by_name["Mailbox"],
    stats_pb2.DESCRIPTOR.services_by_name["Stats"],
)


@dataclass(frozen=True)
class Route:
    service: ServiceDescriptor
    method: MethodDescriptor

    @property
    def path(self) -> str:
        return path_for(self.service, self.method)

    @property
    def streaming(self) -> bool:
        """A server stream (Watch): answered as server-sent events."""
        return self.method.server_streaming

    @property
    def request_class(self) -> type:
        return message_factory.GetMessageClass(self.method.input_type)


def path_for(service: ServiceDescriptor, method: MethodDescriptor) -> str:
    return f"{PREFIX}/{service.name.lower()}/{method.name}"


def routes() -> list[Route]:
    """Every RPC of the served services with a unary request (client streams have no JSON form here)."""
    return [Route(s, m) for s in SERVICES for m in s.methods if not m.client_streaming]
