"""Agencies sharing one host, part two: every local API call, the signing keys, the fair shares.

- Every method of Mailbox, Stats and Admin, called with HA's token naming HB: OTHER_AGENCY, each one
  (a table over the services' descriptors, so a method added later is covered without a line here).
- HA's token on HB's mail by its ids (Fetch, Ack, Track, ExportEdxml, SetStatus, Change, the Admin
  levers on one message): not in HA's mailbox, NOT_FOUND each; HB's mailbox and audit unchanged.
- Keys: HA holds only its own key, so an envelope it signs claiming HB (a co-hosted agency) as its
  sender is refused by HP, like any header whose sender is not the signing certificate's.
- Fair shares (node/host/shares.py): HA holding Watch streams gets its places, then TOO_MANY_STREAMS, and
  M holding health Watch streams on the peer port to HB gets a peer's few (node/peer_gate.py), then
  TOO_MANY_STREAMS; another agency is still served meanwhile (observed by its answers: the first event
  of its stream, its health).
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc as hgrpc

from node import envelope
from node.envelope import Signer
from node.api.http_routes import routes
from node.api.http_server import AGENCY_HEADER as HTTP_AGENCY
from node.host.dispatch import AGENCY
from node.identity import certs
from node.pb import admin_pb2, mailbox_pb2, stats_pb2
from node.pb import admin_pb2 as apb
from node.pb import envelope_pb2 as pb
from node.pb import exchange_pb2 as xpb
from node.pb import exchange_pb2_grpc as xgrpc
from node.pb import mailbox_pb2 as mpb
from node.peer_gate import HEALTH_WATCHES_PER_PEER
from node.runtime import MAX_WATCHERS, PEER_WORKERS
from node.transport.grpc_peers import CALLED, grpc_options

from .core import Observed, call, case, hold_streams, refused
from .hosting import HA, HB, HP
from .world import M, TIMEOUT, document, poll, read_rows

API = "the host's local API, with HA's token"
SERVICES = (mailbox_pb2.DESCRIPTOR.services_by_name["Mailbox"], stats_pb2.DESCRIPTOR.services_by_name["Stats"],
            admin_pb2.DESCRIPTOR.services_by_name["Admin"])
HELD_S = 4 * TIMEOUT  # a held stream's deadline: the case cancels it long before


def _untouched(s, attack) -> Observed:
    hosting = s.w.hosting()
    before = hosting.rows(HB)
    observed = attack(hosting)
    assert hosting.rows(HB) == before, "HB's mailbox or audit changed"
    return observed


def _raw(channel: grpc.Channel, service, method):
    path = f"/{service.full_name}/{method.name}"
    kind = channel.unary_stream if method.server_streaming else channel.unary_unary
    return kind(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)


def _one(rpc, streaming: bool, request: bytes, metadata) -> Observed:
    try:
        answer = rpc(request, metadata=metadata, timeout=TIMEOUT)
        if streaming:
            next(iter(answer))
            answer.cancel()
    except grpc.RpcError as e:
        return refused(e)
    return Observed("OK")


@case("hosting", "HA's token naming HB on every Mailbox, Stats and Admin method", "PERMISSION_DENIED",
      "OTHER_AGENCY", via="every method of " + API)
def _(s):
    def attack(hosting):
        a = hosting.client(HA)
        metadata = a.metadata + ((AGENCY, HB),)
        odd, first = [], None
        for service in SERVICES:
            for method in service.methods:
                o = _one(_raw(a.channel, service, method), method.server_streaming, b"", metadata)
                first = first or o
                if (o.status, o.reason) != ("PERMISSION_DENIED", "OTHER_AGENCY"):
                    odd.append(f"{service.name}.{method.name}: {o.status} {o.reason}")
        assert sum(len(sv.methods) for sv in SERVICES) >= 27, "the table lost its methods"
        return Observed("mixed", "; ".join(odd)) if odd else first
    return _untouched(s, attack)


def _by_ids(hosting) -> list[tuple[str, object, object]]:
    """(what, rpc, request) acting on HB's received document or HP's sent one, by their ids."""
    a = hosting.client(HA)
    msg, doc = hosting.doc_for_b, hosting.doc_id
    m, ad = a.stub, a.admin.stub
    return [("Fetch", m.Fetch, mpb.FetchRequest(message_id=msg)),
            ("Ack", m.Ack, mpb.AckRequest(message_id=msg)),
            ("Track", m.Track, mpb.TrackRequest(doc_id=doc)),
            ("ExportEdxml", m.ExportEdxml, mpb.ExportEdxmlRequest(message_id=msg)),
            ("SetStatus", m.SetStatus, mpb.SetStatusRequest(message_id=msg, status_code="03")),
            ("Change", m.Change, mpb.ChangeRequest(doc_id=doc, take_back=True, reason="thu hồi")),
            ("Admin.HoldMessage", ad.HoldMessage, apb.MessageRequest(message_id=msg)),
            ("Admin.ReleaseMessage", ad.ReleaseMessage, apb.MessageRequest(message_id=msg)),
            ("Admin.RetryMessage", ad.RetryMessage, apb.MessageRequest(message_id=msg)),
            ("Admin.Purge", ad.Purge, apb.PurgeRequest(message_id=msg, reason="xoá"))]


@case("hosting", "HA's token acts on HB's and HP's mail by their ids (read, ack, status, change, hold, purge)",
      "NOT_FOUND", "NOT_FOUND", via="Mailbox and Admin calls on " + API)
def _(s):
    """HA's mailbox is all its token reaches: another agency's ids are simply not there (nothing says whether
    they exist elsewhere on the host). Ack, which answers an unknown id idempotently, must still not be OK."""
    def attack(hosting):
        p_rows = read_rows(_mailbox(hosting, HP), "SELECT message_id, state, held FROM outbox")
        odd = []
        for what, rpc, request in _by_ids(hosting):
            o = call(rpc, request, metadata=hosting.client(HA).metadata)
            if (o.status, o.reason) != ("NOT_FOUND", "NOT_FOUND"):
                odd.append(f"{what}: {o.status} {o.reason}")
        assert read_rows(_mailbox(hosting, HP), "SELECT message_id, state, held FROM outbox") == p_rows, \
            "HP's outbox changed"
        return Observed("mixed", "; ".join(odd)) if odd else Observed("NOT_FOUND", "NOT_FOUND")
    return _untouched(s, attack)


def _mailbox(hosting, code: str):
    from node.harness import nodes
    return nodes.mailbox_path(hosting.handle.agencies[code].dir)


# ---- keys -----------------------------------------------------------------------------------------

def _peer_channel(hosting, key_pem: bytes, cert_pem: bytes, anchors_pem: bytes, pinned: str) -> grpc.Channel:
    creds = grpc.ssl_channel_credentials(anchors_pem, key_pem, cert_pem)
    return grpc.secure_channel(f"dns:///{hosting.handle.listen}", creds, options=grpc_options(1 << 20) + [
        ("grpc.ssl_target_name_override", certs.tls_name(pinned))])


@case("hosting", "HA signs an envelope claiming co-hosted HB as its sender and hands it to HP",
      "PERMISSION_DENIED", "SENDER_MISMATCH", via="Exchange.Deliver at the host's peer port, as HA")
def _(s):
    """Each hosted agency holds its own key only (HA's servicers and makers sign with HA's): the one signature
    HA can put on a header naming HB is HA's, which HP refuses; nothing reaches HP's inbox or HB."""
    def attack(hosting):
        keys = hosting.handle.agencies[HA].dir / "keys"
        ha = Signer.from_files(keys / "node.key", keys / "node.pem")
        _, raw = envelope.seal(ha, HP, document("Công văn giả danh xã B"), lifetime_s=3600)
        env = pb.Envelope.FromString(raw)
        header = pb.Header.FromString(env.header)
        header.sender = HB
        env.header = header.SerializeToString()
        env.signature = ha.sign(env.header)
        inbox = read_rows(_mailbox(hosting, HP), "SELECT message_id FROM inbox")
        with _peer_channel(hosting, (keys / "node.key").read_bytes(), (keys / "node.pem").read_bytes(),
                           s.w.anchors_pem, HP) as channel:
            o = call(xgrpc.ExchangeStub(channel).Deliver, xpb.DeliverRequest(envelope=env.SerializeToString()),
                     metadata=((CALLED, HP),))
        assert read_rows(_mailbox(hosting, HP), "SELECT message_id FROM inbox") == inbox, "HP took it"
        return o
    return _untouched(s, attack)


# ---- fair shares ----------------------------------------------------------------------------------

@case("hosting", "HA's token holds Watch streams on the host's API until refused; HB is served meanwhile",
      "RESOURCE_EXHAUSTED", "TOO_MANY_STREAMS", via="Mailbox.Watch on " + API)
def _(s):
    """Each stream holds one of the host's API workers for as long as it is open. HA gets its own few Watch
    places (node/host/shared.py, node.limits.Places), then TOO_MANY_STREAMS; HB's own Watch still starts and its
    calls are answered. (The API workers' share, AGENCY_BUSY, bounds the rest of HA's calls.)"""
    def attack(hosting):
        a, b = hosting.client(HA), hosting.client(HB)
        held, refusal = hold_streams(lambda: a.stub.Watch(mpb.WatchRequest(inbox=True), metadata=a.metadata,
                                                   timeout=HELD_S), MAX_WATCHERS + 1)
        try:
            assert 0 < len(held) < MAX_WATCHERS // 2, f"HA holds {len(held)} streams"
            watch = b.stub.Watch(mpb.WatchRequest(inbox=True), metadata=b.metadata, timeout=TIMEOUT)
            assert next(watch).event_type == mpb.EVENT_TYPE_WATCHING
            watch.cancel()
            b.stub.ListInbox(mpb.ListInboxRequest(), metadata=b.metadata, timeout=TIMEOUT)
        finally:
            for stream in held:
                stream.cancel()
        return refusal
    return _untouched(s, attack)


@case("hosting", "M holds health Watch streams to HB on the host's peer port until refused; HA is served meanwhile",
      "RESOURCE_EXHAUSTED", "TOO_MANY_STREAMS", via="grpc.health.v1.Health.Watch at the host's peer port, as M")
def _(s):
    """A health Watch holds a peer worker for as long as the caller listens. A peer gets a few such streams of
    the host's few (node/peer_gate.py, one count for every agency), then TOO_MANY_STREAMS, far within HB's
    share of the peer workers; HA (another agency of the host) still answers at once."""
    def attack(hosting):
        ident = s.w.ids[M].tls(s.w.anchors_pem)
        with _peer_channel(hosting, ident.key_pem, ident.cert_pem, ident.anchors_pem, HB) as to_b, \
                _peer_channel(hosting, ident.key_pem, ident.cert_pem, ident.anchors_pem, HA) as to_a:
            health_b, health_a = hgrpc.HealthStub(to_b), hgrpc.HealthStub(to_a)
            held, refusal = hold_streams(lambda: health_b.Watch(health_pb2.HealthCheckRequest(), metadata=((CALLED, HB),),
                                                         timeout=HELD_S), PEER_WORKERS + 1)
            try:
                assert len(held) == HEALTH_WATCHES_PER_PEER, f"M holds {len(held)} streams to HB"
                answer = health_a.Check(health_pb2.HealthCheckRequest(), metadata=((CALLED, HA),), timeout=TIMEOUT)
                assert answer.status == health_pb2.HealthCheckResponse.SERVING
            finally:
                for stream in held:
                    stream.cancel()
            # the share is given back as the streams end: HB answers again (the cases after this one need it)
            poll("HB answering on the peer port again", lambda: _answers(health_b, HB))
        return refusal
    return _untouched(s, attack)


def _answers(stub, code: str) -> bool:
    try:
        stub.Check(health_pb2.HealthCheckRequest(), metadata=((CALLED, code),), timeout=TIMEOUT)
        return True
    except grpc.RpcError:
        return False


# ---- the HTTP/JSON face -------------------------------------------------------------------------

def _post(url: str, token: str, body: dict, agency: str | None = None) -> Observed:
    """A real HTTP call; its refusal as (gRPC status name, reason) from the JSON error body, or OK."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if agency is not None:
        headers[HTTP_AGENCY] = agency
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as resp:
            resp.read(1)  # a Watch answers as an event stream: its first bytes are enough
            return Observed("OK")
    except urllib.error.HTTPError as e:
        error = json.loads(e.read()).get("error", {})
        return Observed(error.get("status", str(e.code)), error.get("reason", ""), detail=error.get("message", ""))


@case("hosting", "HA's token naming HB on every route of the host's HTTP/JSON face", "PERMISSION_DENIED",
      "OTHER_AGENCY", via="every POST /v1/... of the host's HTTP/JSON face, with HA's token")
def _(s):
    def attack(hosting):
        token = hosting.handle.agencies[HA].token
        odd, first = [], None
        for route in routes():
            o = _post(hosting.http + route.path, token, {}, agency=HB)
            first = first or o
            if (o.status, o.reason) != ("PERMISSION_DENIED", "OTHER_AGENCY"):
                odd.append(f"{route.path}: {o.status} {o.reason}")
        assert len(routes()) >= 17, "the table lost its routes"
        return Observed("mixed", "; ".join(odd)) if odd else first
    return _untouched(s, attack)


@case("hosting", "HA's token reads and answers HB's document by its id over HTTP", "NOT_FOUND", "NOT_FOUND",
      via="POST /v1/mailbox/Fetch, Ack, ExportEdxml, SetStatus of the host's HTTP/JSON face, with HA's token")
def _(s):
    def attack(hosting):
        token, msg = hosting.handle.agencies[HA].token, hosting.doc_for_b
        answers = [_post(f"{hosting.http}/v1/mailbox/{m}", token, {"message_id": msg, **extra}) for m, extra in
                   (("Fetch", {}), ("Ack", {}), ("ExportEdxml", {}), ("SetStatus", {"status_code": "03"}))]
        # and HB's own token, to show the face serves each agency its own mailbox
        mine = _post(f"{hosting.http}/v1/mailbox/Fetch", hosting.handle.agencies[HB].token, {"message_id": msg})
        assert mine.status == "OK", mine
        odd = [f"{o.status} {o.reason}" for o in answers if (o.status, o.reason) != ("NOT_FOUND", "NOT_FOUND")]
        return Observed("mixed", "; ".join(odd)) if odd else answers[0]
    return _untouched(s, attack)
