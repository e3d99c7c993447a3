"""The Registry gRPC servicer: what a node answers its children and neighbours."""
from __future__ import annotations

import grpc

from ..errors import Rejected, abort
from ..exchange.service import PeerIdentity
from ..pb import registry_pb2 as rpb
from ..pb import registry_pb2_grpc as rgrpc
from .directory import Directory


class RegistryService(rgrpc.RegistryServicer):
    def __init__(self, directory: Directory, peers: PeerIdentity) -> None:
        self.directory = directory
        self.peers = peers

    def Register(self, request: rpb.SignedRecord, context: grpc.ServicerContext) -> rpb.RegisterResponse:
        try:
            return rpb.RegisterResponse(heartbeat_ms=self.directory.register(request, self.peers.of(context)))
        except Rejected as r:
            abort(context, r)

    def Heartbeat(self, request: rpb.HeartbeatRequest, context: grpc.ServicerContext) -> rpb.HeartbeatResponse:
        try:
            self.directory.heartbeat(request.code, self.peers.of(context), dict(request.odd_codes),
                                     request.subtree_stats)
            return rpb.HeartbeatResponse()
        except Rejected as r:
            abort(context, r)

    def Lookup(self, request: rpb.LookupRequest, context: grpc.ServicerContext) -> rpb.LookupResponse:
        try:
            self.peers.of(context)
            return rpb.LookupResponse(entry=self.directory.lookup(request.code, request.from_below))
        except Rejected as r:
            abort(context, r)

    def Children(self, request: rpb.ChildrenRequest, context: grpc.ServicerContext) -> rpb.ChildrenResponse:
        try:
            self.peers.of(context)
            return rpb.ChildrenResponse(entries=self.directory.children(request.code, request.recursive, request.from_below))
        except Rejected as r:
            abort(context, r)
