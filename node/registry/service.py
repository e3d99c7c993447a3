"""The Registry gRPC servicer: what a node answers its children and neighbours.

Every call is bounded before it costs anything: lookups and listings, and registrations,
heartbeats and checkpoints, each at a rate per peer (RATE_LIMITED); counter rows per heartbeat
(OVER_LIMIT) and the signatures they make us check (SIGNATURE_BUDGET, shared with the peer's
deliveries); listings only for neighbours (NOT_A_NEIGHBOUR). How many calls run at once is
bounded before they get here (node.peer_gate). Refusals are raised as Rejected;
node.interceptor turns them into statuses."""
from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from .. import fields
from ..codes import is_identifier
from ..errors import Reason, Rejected
from ..exchange.service import PeerIdentity
from ..clock import SYSTEM, Clock
from ..limits import Limits, RateLimiter, SignatureBudget, over
from ..pb import registry_pb2 as rpb
from ..pb import registry_pb2_grpc as rgrpc
from . import successions as succ
from .directory import Directory

if TYPE_CHECKING:
    from ..audit.checkpoints import Keeper
    from ..takeover import HandOvers


class RegistryService(rgrpc.RegistryServicer):
    def __init__(self, directory: Directory, peers: PeerIdentity, limits: Limits = Limits(),
                 checkpoints: "Keeper | None" = None, clock: Clock = SYSTEM,
                 signatures: SignatureBudget | None = None, handovers: "HandOvers | None" = None) -> None:
        self.directory = directory
        self.handovers = handovers  # predecessors handing their mailboxes over (node.takeover)
        self.checkpoints = checkpoints
        self.peers = peers
        self.limits = limits
        self.lookups = RateLimiter(limits.lookups_per_second, limits.lookup_burst, clock.now)  # per asking peer
        # per peer and kind: a registration, a heartbeat or a checkpoint each costs a signature check and a write
        self.updates = {kind: RateLimiter(limits.registry_updates_per_second, limits.registry_update_burst, clock.now)
                        for kind in ("registrations", "heartbeats", "checkpoints", "successions")}
        self.signatures = signatures or SignatureBudget(limits, clock.now)

    def use_limits(self, limits: Limits) -> None:
        """limits.* from a reload: the rates, the caps and the signature budget, from the next call on."""
        self.limits = limits
        self.lookups.use(limits.lookups_per_second, limits.lookup_burst)
        for bucket in self.updates.values():
            bucket.use(limits.registry_updates_per_second, limits.registry_update_burst)
        self.signatures.use_limits(limits)

    def _caller(self, context: grpc.ServicerContext, kind: str) -> str | None:
        peer = self.peers.of(context)
        self.updates[kind].check(peer or "plain-text peer", kind)
        return peer

    def Register(self, request: rpb.SignedRecord, context: grpc.ServicerContext) -> rpb.RegisterResponse:
        heartbeat_ms = self.directory.register(request, self._caller(context, "registrations"))
        return rpb.RegisterResponse(heartbeat_ms=heartbeat_ms, crl_der=self.directory.crl_der(),
                                    successions=self.directory.succession_lists())

    def Heartbeat(self, request: rpb.HeartbeatRequest, context: grpc.ServicerContext) -> rpb.HeartbeatResponse:
        peer = self._caller(context, "heartbeats")
        rows = len(request.signed_stats)
        if rows > self.limits.stats_rows_per_heartbeat:  # refused unread: 20,000 rows cost two seconds of CPU
            raise over("signed counter rows in one heartbeat", rows, self.limits.stats_rows_per_heartbeat,
                       "signed_stats")
        claims = len(request.odd_codes)
        if claims > self.limits.odd_codes_per_heartbeat:  # refused unread: each claim is checked, stored, re-routed
            raise over("odd codes claimed in one heartbeat", claims, self.limits.odd_codes_per_heartbeat, "odd_codes")
        succ.check_count(request.succession_numbers, "succession issuers in one heartbeat")  # refused unread
        self.signatures.charge(peer, rows, "heartbeat counters")
        crl = self.directory.heartbeat(request.code, peer, dict(request.odd_codes),
                                       request.signed_stats, request.crl_number)
        return rpb.HeartbeatResponse(crl_der=crl, successions=self.directory.succession_lists(
            dict(request.succession_numbers)))

    def PushSuccessions(self, request: rpb.SuccessionPush, context: grpc.ServicerContext) -> rpb.SuccessionPushResponse:
        succ.check_count(request.lists)  # refused unread: each list costs a signature check
        peer = self._caller(context, "successions")
        self.signatures.charge(peer, len(request.lists), "succession lists")
        return rpb.SuccessionPushResponse(numbers=self.directory.take_pushed_successions(list(request.lists), peer))

    def HandOver(self, request: rpb.HandOverChunk, context: grpc.ServicerContext) -> rpb.HandOverResponse:
        if self.handovers is None:
            raise Rejected(Reason.TAKEOVER_NOT_PREDECESSOR, "this node takes no mailbox over")
        return self.handovers.take(self.peers.of(context), request)

    def PushCrl(self, request: rpb.CrlPush, context: grpc.ServicerContext) -> rpb.CrlPushResponse:
        return rpb.CrlPushResponse(crl_number=self.directory.take_pushed_crl(request.crl_der,
                                                                              self.peers.of(context)))

    def Checkpoint(self, request: rpb.SignedCheckpoint, context: grpc.ServicerContext) -> rpb.CheckpointResponse:
        return self._keeper().take(request, self._caller(context, "checkpoints"))

    def LatestCheckpoint(self, request: rpb.CheckpointRequest, context: grpc.ServicerContext) -> rpb.CheckpointResponse:
        return self._keeper().latest_for(request.code, self.peers.of(context), request.seq)

    def _keeper(self) -> "Keeper":
        if self.checkpoints is None:
            raise Rejected(Reason.NOT_FOUND, "this node keeps no audit checkpoints")
        return self.checkpoints

    def Lookup(self, request: rpb.LookupRequest, context: grpc.ServicerContext) -> rpb.LookupResponse:
        from_below = self._asker(context, request.code, request.from_below)
        return rpb.LookupResponse(entry=self.directory.lookup(request.code, from_below, request.fresh))

    def Children(self, request: rpb.ChildrenRequest, context: grpc.ServicerContext) -> rpb.ChildrenResponse:
        """Listings only for our parent and registered children (the directory asks no one else): a listing
        makes us ask a subtree and check every record in it, work no stranger may order."""
        from_below = self._asker(context, request.code, request.from_below)
        peer = self.peers.of(context)
        if peer is not None and peer != self.directory.parent and not self.directory.is_child(peer):
            raise Rejected(Reason.NOT_A_NEIGHBOUR, f"{peer} is not the parent or a registered child of "
                           f"{self.directory.code}: listings are answered to neighbours only")
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
