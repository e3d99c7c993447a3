"""Agencies sharing one host (tests/hostile/hosting.py): HA's token against HB, and peers naming agencies
the host does not serve.

An agency's token acts on that agency only: naming another in `lienthong-agency` is OTHER_AGENCY whether
it exists or not (so the answer tells nothing about what else the host serves), and a message id of
another agency's mailbox is simply not in the token's own (NOT_FOUND). On the peer port, the code called
travels as `lienthong-to`: none, two, or one the host does not serve is NOT_HOSTED. The caller's identity is
its client certificate whatever it names, and a call is answered by the agency named, never by the one
whose certificate the TLS handshake showed: a peer that mixes the two reaches nothing more than it could
by naming that agency honestly. Each case checks HB's mailbox and audit rows are unchanged.
"""
from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2

from node.host.dispatch import AGENCY
from node.identity import certs
from node.pb import admin_pb2 as apb
from node.pb import mailbox_pb2 as mpb
from node.pb import registry_pb2 as rpb
from node.transport.grpc_peers import CALLED, grpc_options
from node.transport.interface import HEALTH_CHECK, LOOKUP

from .core import Observed, call, case, refused
from .hosting import HA, HB, HP
from .world import M, TIMEOUT

API = "the host's local API, with HA's token"
PEER = "the host's peer port, as M"


def _untouched(s, attack) -> Observed:
    hosting = s.w.hosting()
    before = hosting.rows(HB)
    observed = attack(hosting)
    assert hosting.rows(HB) == before, "HB's mailbox or audit changed"
    return observed


def _as_a(hosting, *named: str):
    a = hosting.client(HA)
    return a, a.metadata + tuple((AGENCY, code) for code in named)


@case("hosting", "HA's token lists HB's inbox, naming HB", "PERMISSION_DENIED", "OTHER_AGENCY", via=API)
def _(s):
    def attack(hosting):
        a, metadata = _as_a(hosting, HB)
        return call(a.stub.ListInbox, mpb.ListInboxRequest(), metadata=metadata)
    return _untouched(s, attack)


@case("hosting", "HA's token fetches HB's document by its message id", "NOT_FOUND", "NOT_FOUND", via=API)
def _(s):
    def attack(hosting):
        a, metadata = _as_a(hosting)
        return call(a.stub.Fetch, mpb.FetchRequest(message_id=hosting.doc_for_b), metadata=metadata)
    return _untouched(s, attack)


@case("hosting", "HA's token purges HB's document through Admin, naming HB", "PERMISSION_DENIED", "OTHER_AGENCY",
      via="Admin.Purge on " + API)
def _(s):
    def attack(hosting):
        a, metadata = _as_a(hosting, HB)
        return call(a.admin.stub.Purge, apb.PurgeRequest(message_id=hosting.doc_for_b, reason="x"), metadata=metadata)
    return _untouched(s, attack)


@case("hosting", "HA's token reads the queues naming HA and HB at once", "NOT_FOUND", "NOT_HOSTED",
      via="Admin.Queues on " + API)
def _(s):
    def attack(hosting):
        a, metadata = _as_a(hosting, HA, HB)
        return call(a.admin.stub.Queues, apb.QueuesRequest(), metadata=metadata)
    return _untouched(s, attack)


@case("hosting", "HA's token names an agency the host does not serve", "PERMISSION_DENIED", "OTHER_AGENCY",
      via=API)
def _(s):
    """The same answer as for an agency it does serve: nothing learnt about what else is hosted."""
    def attack(hosting):
        a, metadata = _as_a(hosting, "000.09.41.H53")
        return call(a.stub.ListInbox, mpb.ListInboxRequest(), metadata=metadata)
    return _untouched(s, attack)


@case("hosting", "the host admin token, naming no agency on a host of three", "NOT_FOUND", "NOT_HOSTED",
      via="Mailbox.ListInbox on the host's local API, as the host admin")
def _(s):
    def attack(hosting):
        a = hosting.client(HA)
        admin = (("authorization", f"Bearer {hosting.handle.admin_token}"),)
        return call(a.stub.ListInbox, mpb.ListInboxRequest(), metadata=admin)
    return _untouched(s, attack)


def _peer_call(s, method, request, metadata, pinned: str = HP) -> Observed:
    """M's certificate, a handshake pinned to `pinned` (so the host shows that agency's certificate)."""
    def attack(hosting):
        ident = s.w.ids[M].tls(s.w.anchors_pem)
        creds = grpc.ssl_channel_credentials(ident.anchors_pem, ident.key_pem, ident.cert_pem)
        with grpc.secure_channel(f"dns:///{hosting.handle.listen}", creds, options=grpc_options(1 << 20) + [
                ("grpc.ssl_target_name_override", certs.tls_name(pinned))]) as channel:
            rpc = channel.unary_unary(method.path, request_serializer=lambda m: m.SerializeToString(),
                                      response_deserializer=method.response.FromString)
            try:
                answer = rpc(request, metadata=metadata, timeout=TIMEOUT)
            except grpc.RpcError as e:
                return refused(e)
            return Observed("OK", detail=str(answer))
    return _untouched(s, attack)


@case("hosting", "a peer names an agency the host does not serve", "NOT_FOUND", "NOT_HOSTED",
      via="Registry.Lookup at " + PEER)
def _(s):
    return _peer_call(s, LOOKUP, rpb.LookupRequest(code=HB), ((CALLED, "000.09.41.H53"),))


@case("hosting", "a peer names two hosted agencies in one call", "NOT_FOUND", "NOT_HOSTED",
      via="Registry.Lookup at " + PEER)
def _(s):
    return _peer_call(s, LOOKUP, rpb.LookupRequest(code=HB), ((CALLED, HA), (CALLED, HB)))


@case("hosting", "a peer names no agency on a host of three", "NOT_FOUND", "NOT_HOSTED",
      via="Registry.Lookup at " + PEER)
def _(s):
    return _peer_call(s, LOOKUP, rpb.LookupRequest(code=HB), ())


@case("hosting", "a peer shakes hands with HB's certificate and names HA", "OK", "answered by HA, as HA",
      via="grpc.health.v1.Health.Check at " + PEER)
def _(s):
    """The header picks the agency, the handshake only what the caller checks: M talks to HA as M, exactly as
    if it had asked for HA's name; HB is not reached (its mailbox and audit are unchanged) and HA's answers
    are HA's (a receipt would be signed by HA, which a caller expecting HB refuses)."""
    observed = _peer_call(s, HEALTH_CHECK, health_pb2.HealthCheckRequest(), ((CALLED, HA),), pinned=HB)
    assert observed.status == "OK" and "SERVING" in observed.detail
    return Observed("OK", "answered by HA, as HA")
