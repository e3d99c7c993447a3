"""The Registry gRPC servicer: what a node answers its children and neighbours.

Refusals are raised as Rejected; node.interceptor turns them into statuses."""
from __future__ import annotations

import grpc

from ..exchange.service import PeerIdentity
from ..pb import registry_pb2 as rpb
from ..pb import registry_pb2_grpc as rgrpc
from .directory import Directory


class RegistryService(rgrpc.RegistryServicer):
    def __init__(self, directory: Directory, peers: PeerIdentity) -> None:
        self.directory = directory
        self.peers = peers

    def Register(self, request: rpb.SignedRecord, context: grpc.ServicerContext) -> rpb.RegisterResponse:
        return rpb.RegisterResponse(heartbeat_ms=self.directory.register(request, self.peers.of(context)))

    def Heartbeat(self, request: rpb.HeartbeatRequest, context: grpc.ServicerContext) -> rpb.HeartbeatResponse:
        self.directory.heartbeat(request.code, self.peers.of(context), dict(request.odd_codes),
                                  request.signed_stats)
        return rpb.HeartbeatResponse()

    def Lookup(self, request: rpb.LookupRequest, context: grpc.ServicerContext) -> rpb.LookupResponse:
        self.peers.of(context)
        return rpb.LookupResponse(entry=self.directory.lookup(request.code, request.from_below))

    def Children(self, request: rpb.ChildrenRequest, context: grpc.ServicerContext) -> rpb.ChildrenResponse:
        self.peers.of(context)
        return rpb.ChildrenResponse(entries=self.directory.children(request.code, request.recursive, request.from_below))
