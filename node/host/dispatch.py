"""A host's two servers hand each call to one agency's servicers.

Peer port: the called agency is named by the call's `lienthong-to` metadata (set by every
transport; gRPC also sent its name as SNI, so the caller saw that agency's certificate). The
caller's identity comes from its own client certificate, as on a standalone node, and the call
runs behind the called agency's PeerGate and interceptors. A code this host does not serve, or
two of them, is NOT_HOSTED; a call naming none reaches a host's only agency (peers older than
hosting), and is NOT_HOSTED on a host of several.

API port: the token says who calls (one dict lookup of its SHA-256 digest, however many agencies
the host serves): an agency's client runs on that agency and no other (naming another in
`lienthong-agency` is OTHER_AGENCY, whether it exists or not); the host admin runs on the agency it
names there, with every scope.
"""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import grpc

from ..api.auth import CallerKnown
from ..api.clients import SCOPES, Client
from ..api.strict import StrictRequestInterceptor
from ..errors import Reason, Rejected
from ..interceptor import SERVICE_PREFIX, ErrorInterceptor, refuse, with_behavior
from ..logs import serving_as
from ..transport.grpc_peers import CALLED
from .shares import AgencyShares

if TYPE_CHECKING:
    from .host import Host

AGENCY = "lienthong-agency"  # API call metadata: the agency a host admin acts on
HOST_ADMIN = Client("host-admin", frozenset(SCOPES))


def digest(header: str | bytes) -> bytes:
    return hashlib.sha256(header.encode("utf-8", "replace") if isinstance(header, str) else header).digest()


def _named(details, key: str) -> list[str]:
    return [v for k, v in details.invocation_metadata or () if k == key]


def as_agency(handler: grpc.RpcMethodHandler | None, code: str,
              shares: AgencyShares | None = None) -> grpc.RpcMethodHandler | None:
    """`handler` run with `code` on its log lines (the host's worker threads serve every agency), within
    `code`'s share of the pool's workers (node/host/shares.py: AGENCY_BUSY past it, answered at once,
    holding nothing)."""
    if handler is None:
        return None

    def admit(context) -> None:
        if shares is not None and (refusal := shares.enter(code)) is not None:
            refuse(context, refusal)

    def done() -> None:
        if shares is not None:
            shares.leave(code)

    def wrap(behavior, streaming):
        if streaming:
            def stream(request, context):
                admit(context)
                try:
                    with serving_as(code):
                        yield from behavior(request, context)
                finally:
                    done()
            return stream

        def unary(request, context):
            admit(context)
            try:
                with serving_as(code):
                    return behavior(request, context)
            finally:
                done()
        return unary
    return with_behavior(handler, wrap)


def _refusing(refusal: Rejected) -> grpc.RpcMethodHandler:
    def deny(request, context):
        refuse(context, refusal)
    return grpc.unary_unary_rpc_method_handler(deny)


class PeerDispatch(grpc.GenericRpcHandler):
    def __init__(self, host: "Host") -> None:
        self.host = host

    def service(self, details):
        named = _named(details, CALLED)
        agencies = self.host.agencies
        node = None
        if len(named) == 1:
            node = agencies.get(named[0])
        elif not named and len(agencies) == 1:  # peers older than hosting name nobody: the only one it is
            node = next(iter(agencies.values()))
        if node is None or node.local_peer is None:
            return _refusing(Rejected(Reason.NOT_HOSTED, "this host serves no agency by the code called "
                                      f"({CALLED} metadata: exactly one hosted code)"))
        return as_agency(node.local_peer.intercepted(details), node.settings.node.code, self.host.peer_shares)


def api_caller(host: "Host", header: str | bytes | None, named: list[str]):
    """(the agency's node, the client, None) for a local API call (gRPC or HTTP), or (node or None, client or
    None, the refusal): the token says who calls; `named` is what the call names in `lienthong-agency`."""
    who = host.caller(header) if header is not None else None
    agencies = host.agencies
    node, client, refusal = None, None, None
    if who is None:
        return None, None, Rejected(Reason.UNAUTHENTICATED)
    code, client = who
    if len(named) > 1:
        refusal = Rejected(Reason.NOT_HOSTED, f"name one agency in {AGENCY}, not {len(named)}")
    elif code is not None:  # an agency's client: its own agency only
        if named and named[0] != code:
            refusal = Rejected(Reason.OTHER_AGENCY, f"this token is {code}'s: it acts on that agency only",
                               metadata={"agency": code})
        node = agencies.get(code)
    elif named:  # the host admin, on the agency it names
        node = agencies.get(named[0])
    elif len(agencies) == 1:
        node = next(iter(agencies.values()))
    else:
        refusal = Rejected(Reason.NOT_HOSTED, f"the host admin names the agency it acts on in {AGENCY}")
    if node is None and refusal is None:
        refusal = Rejected(Reason.NOT_HOSTED, "this host serves no such agency (any more)")
    return node, client, refusal


class ApiDispatch(grpc.GenericRpcHandler):
    def __init__(self, host: "Host") -> None:
        self.host = host

    def service(self, details):
        if not details.method.startswith(SERVICE_PREFIX):
            return None  # health is the host's own (registered on the server); nothing else is served
        header = next(iter(_named(details, "authorization")), None)
        node, client, refusal = api_caller(self.host, header, _named(details, AGENCY))
        table = node.api_table if node is not None else self.host.any_api_table()
        if table is None:
            return _refusing(refusal or Rejected(Reason.NOT_HOSTED))
        handler = table.handler(details, [ErrorInterceptor(), CallerKnown(client, refusal), StrictRequestInterceptor()])
        if node is None:
            return handler
        return as_agency(handler, node.settings.node.code, self.host.api_shares)
