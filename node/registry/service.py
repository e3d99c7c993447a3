"""The Registry gRPC servicer: what a node answers its children and neighbours.

Refusals are raised as Rejected; node.interceptor turns them into statuses."""
from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from .. import fields
from ..codes import is_identifier
from ..errors import Reason, Rejected
from ..exchange.service import PeerIdentity
from ..limits import Limits, RateLimiter
from ..pb import registry_pb2 as rpb
from ..pb import registry_pb2_grpc as rgrpc
from .directory import Directory

if TYPE_CHECKING:
    from ..audit.checkpoints import Keeper


class RegistryService(rgrpc.RegistryServicer):
    def __init__(self, directory: Directory, peers: PeerIdentity, limits: Limits = Limits(),
                 checkpoints: "Keeper | None" = None) -> None:
        self.directory = directory
        self.checkpoints = checkpoints
        self.peers = peers
        self.lookups = RateLimiter(limits.lookups_per_second, limits.lookup_burst)  # per asking peer

    def Register(self, request: rpb.SignedRecord, context: grpc.ServicerContext) -> rpb.RegisterResponse:
        heartbeat_ms = self.directory.register(request, self.peers.of(context))
        return rpb.RegisterResponse(heartbeat_ms=heartbeat_ms, crl_der=self.directory.crl_der())

    def Heartbeat(self, request: rpb.HeartbeatRequest, context: grpc.ServicerContext) -> rpb.HeartbeatResponse:
        crl = self.directory.heartbeat(request.code, self.peers.of(context), dict(request.odd_codes),
                                       request.signed_stats, request.crl_number)
        return rpb.HeartbeatResponse(crl_der=crl)

    def PushCrl(self, request: rpb.CrlPush, context: grpc.ServicerContext) -> rpb.CrlPushResponse:
        return rpb.CrlPushResponse(crl_number=self.directory.take_pushed_crl(request.crl_der,
                                                                              self.peers.of(context)))

    def Checkpoint(self, request: rpb.SignedCheckpoint, context: grpc.ServicerContext) -> rpb.CheckpointResponse:
        return self._keeper().take(request, self.peers.of(context))

    def LatestCheckpoint(self, request: rpb.CheckpointRequest, context: grpc.ServicerContext) -> rpb.CheckpointResponse:
        return self._keeper().latest_for(request.code, self.peers.of(context), request.seq)

    def _keeper(self) -> "Keeper":
        if self.checkpoints is None:
            raise Rejected(Reason.NOT_FOUND, "this node keeps no audit checkpoints")
        return self.checkpoints

    def Lookup(self, request: rpb.LookupRequest, context: grpc.ServicerContext) -> rpb.LookupResponse:
        from_below = self._asker(context, request.code, request.from_below)
        return rpb.LookupResponse(entry=self.directory.lookup(request.code, from_below))

    def Children(self, request: rpb.ChildrenRequest, context: grpc.ServicerContext) -> rpb.ChildrenResponse:
        from_below = self._asker(context, request.code, request.from_below)
        return rpb.ChildrenResponse(entries=self.directory.children(request.code, request.recursive, from_below))

    def _asker(self, context: grpc.ServicerContext, code: str, from_below: bool) -> bool:
        """Check who asks and how often; return whether we may pass the question up for them.

        Only a registered child's question travels up (a lookup climbs from below): anyone
        else's `from_below` is ignored, so no node can make us query the tree on its behalf."""
        peer = self.peers.of(context)
        self.lookups.check(peer or "plain-text peer", "registry lookups")
        fields.check_code(code)
        if not is_identifier(code):
            raise Rejected(Reason.INVALID_REQUEST, f"{code[:40]!r} is not an agency code", field="code")
        return from_below and (peer is None or self.directory.is_child(peer))
