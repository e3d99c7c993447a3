"""Every servicer of a real node (Mailbox, Stats, Exchange, Registry) refuses through the one
error path: status code, ErrorInfo (reason, domain, metadata) and, when a field is named,
a BadRequest; read with grpcio-status only, as a client in another language would.

    000.00.00.H53 (P) ── 000.00.35.H53 (D1)
                     └── 000.00.38.H53 (D2)
"""
from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from node.api.auth import call_metadata
from node.transport.grpc_peers import TlsMaterial, open_channel
from node.grpc_errors import DOMAIN
from node.harness.inproc import start_tree
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb
from node.pb import exchange_pb2 as xpb
from node.pb import exchange_pb2_grpc as xgrpc
from node.pb import registry_pb2 as rpb
from node.pb import registry_pb2_grpc as rgrpc
from node.pb import stats_pb2 as spb
from node.pb import stats_pb2_grpc as sgrpc

P, D1, D2 = "000.00.00.H53", "000.00.35.H53", "000.00.38.H53"
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    t = start_tree(tmp_path_factory.mktemp("errors"), {P: None, D1: P, D2: P})
    yield t
    t.stop()


def refusal(call, *args, **kw) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, **kw)
    return info.value


def details(err: grpc.RpcError) -> tuple[error_details_pb2.ErrorInfo, list[str]]:
    """(ErrorInfo, BadRequest fields) from the google.rpc.Status in the trailers."""
    status = rpc_status.from_call(err)
    assert status is not None and status.message == err.details()
    infos, fields = [], []
    for packed in status.details:
        if packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            packed.Unpack(info)
            infos.append(info)
        elif packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            packed.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    [info] = infos
    assert info.domain == DOMAIN
    return info, fields


def peer_channel(tree, code: str, at: str) -> grpc.Channel:
    """A mutual-TLS channel to node `at`'s peer port, as node `code`."""
    keys = tree[code][1].dir / "keys"
    tls = TlsMaterial((keys / "node.key").read_bytes(), (keys / "node.pem").read_bytes(), (keys / "ca.pem").read_bytes())
    return open_channel(tls, at, tree[at][1].listen, 1 << 20)


def test_mailbox_names_the_field_of_a_batch_document(tree):
    docs = [(pb.Document(subject=f"lô {i}"), [P]) for i in range(3)] + [(pb.Document(subject="x"), [P, "not-a-code"])]
    err = refusal(tree.client(D1).send_batch, docs)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "documents[3]: recipient 'not-a-code' is not an agency code"
    info, fields = details(err)
    assert (info.reason, dict(info.metadata), fields) == (
        "INVALID_REQUEST", {"field": "documents[3].recipients[1]"}, ["documents[3].recipients[1]"])


@pytest.mark.parametrize("call, field", [
    (lambda c: c.send(pb.Document(content="no subject"), [P]), "document.subject"),
    (lambda c: c.send(pb.Document(subject="s"), [P], priority=9), "priority"),
    (lambda c: c.sent(state="lost"), "state"),
    (lambda c: c.lookup(""), "code"),
], ids=["subject", "priority", "state", "lookup-code"])
def test_mailbox_names_the_invalid_field(tree, call, field):
    err = refusal(call, tree.client(D1))
    info, fields = details(err)
    assert (err.code(), info.reason, fields) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST", [field])


def test_a_stream_is_refused_the_same_way(tree):
    err = refusal(lambda: list(tree.client(D1).watch(inbox=False, sent=False, timeout=TIMEOUT)))
    info, fields = details(err)
    # the refusal names the request field it is about (issue 17, vendor 7), on a stream as on a unary call
    assert (err.code(), info.reason, fields) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST", ["inbox"])
    assert err.details() == "watch inbox, sent, registry, or a mix"


def test_a_wrong_step_says_the_current_status_and_what_is_allowed(tree):
    sender, recipient = tree.client(D1), tree.client(P)
    with EventWaiter(recipient, sent=False) as arrivals:
        [sent] = sender.send(pb.Document(subject="Về việc thử bước sai"), [P]).envelopes
        arrivals.wait(lambda evs: sent.message_id in {e.message_id for e in evs}, TIMEOUT)
    err = refusal(recipient.set_status, sent.message_id, "06")
    info, fields = details(err)
    assert (err.code(), info.reason, fields) == (grpc.StatusCode.FAILED_PRECONDITION, "BAD_STEP", [])
    assert dict(info.metadata) == {"current_status": "01", "allowed": "02,03"}


def test_stats_without_the_token(tree):
    client = tree.client(D1)
    err = refusal(sgrpc.StatsStub(client.channel).Get, spb.StatsRequest(), metadata=call_metadata("wrong"),
                  timeout=TIMEOUT)
    info, _ = details(err)
    assert (err.code(), err.details(), info.reason) == (
        grpc.StatusCode.UNAUTHENTICATED, "missing or wrong API token", "UNAUTHENTICATED")


def test_exchange_refuses_an_envelope_that_does_not_parse(tree):
    channel = peer_channel(tree, D1, P)
    try:
        err = refusal(xgrpc.ExchangeStub(channel).Deliver, xpb.DeliverRequest(envelope=b"\xff not protobuf"),
                      timeout=TIMEOUT)
    finally:
        channel.close()
    info, _ = details(err)
    assert (err.code(), err.details(), info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "envelope does not parse",
                                                        "MALFORMED")


def test_registry_refuses_a_heartbeat_from_a_node_not_registered_there(tree):
    channel = peer_channel(tree, D1, D2)
    try:
        err = refusal(rgrpc.RegistryStub(channel).Heartbeat, rpb.HeartbeatRequest(code=D1, time_ms=1), timeout=TIMEOUT)
    finally:
        channel.close()
    info, _ = details(err)
    assert (err.code(), info.reason) == (grpc.StatusCode.NOT_FOUND, "UNKNOWN_RECIPIENT")
    assert err.details() == f"{D1} is not registered with {D2}"
