"""A token per client program (api.tokens), on a real node process over gRPC and HTTP/JSON.

Two programs share one node: each has its own client-key space (the same key from the other is
another request, never its answer, and cannot block it), the audit log names the client on what
it sends, holds and purges, and scopes bound what each may call (NOT_PERMITTED, nothing done).
The single token of before is the client "default" and keeps working, with every scope."""
from __future__ import annotations

import secrets

import grpc
import pytest

from node.client import MailboxClient
from node.grpc_errors import metadata_of, reason_of
from node.harness import nodes
from node.harness.http_api import HttpApi
from node.harness.nodes import NodeSpec
from node.pb import envelope_pb2 as pb
from node.store import audit
from node.store.database import Database

A, B = "000.00.01.H53", "000.00.02.H53"
TIMEOUT = 30.0
TOKENS = {name: secrets.token_urlsafe(32) for name in ("qlvb", "portal", "monitor", "ops")}
SCOPES = {"qlvb": ["read", "send"], "portal": ["read", "send"], "monitor": ["read"], "ops": ["admin"]}


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """A with four clients besides "default"; B stays down, so what A sends stays queued (nothing changes
    under the test's feet)."""
    root = tmp_path_factory.mktemp("clients")
    tokens = [{"name": n, "token": t, "scopes": SCOPES[n]} for n, t in TOKENS.items()]
    ha, _ = nodes.pair(root, NodeSpec(A, "Sở A", extra={"api": {"tokens": tokens, "http_listen": "127.0.0.1:0"}}),
                       NodeSpec(B, "Sở B"))
    nodes.start(ha)
    clients = {}
    try:
        nodes.wait_healthy([ha], TIMEOUT)
        clients = {n: MailboxClient(ha.api, t, TIMEOUT) for n, t in TOKENS.items()}
        clients["default"] = ha.client(TIMEOUT)
        yield ha, clients
    finally:
        for c in clients.values():
            c.close()
        nodes.terminate(ha)


def refused(call, *args, **kw) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, **kw)
    return info.value


def sent_rows(ha) -> dict[str, str]:
    db = Database(ha.dir / "data" / "mailbox.sqlite3")
    try:
        return {r["message_id"]: r["detail"] for r in audit.recent(db, limit=10_000, event=audit.SENT)}
    finally:
        db.close()


def test_each_program_has_its_own_client_key_space(node):
    ha, c = node
    mine = c["qlvb"].send(pb.Document(subject="Giấy mời"), [B], client_key="k-1")
    theirs = c["portal"].send(pb.Document(subject="Giấy mời"), [B], client_key="k-1")  # the same key and request
    assert theirs.envelopes[0].message_id != mine.envelopes[0].message_id  # its own request, not mine replayed
    other = c["portal"].send(pb.Document(subject="Khác"), [B], client_key="k-2")
    assert c["qlvb"].send(pb.Document(subject="Khác hẳn"), [B], client_key="k-2")  # not blocked by portal's k-2
    assert c["qlvb"].send(pb.Document(subject="Giấy mời"), [B], client_key="k-1") == mine  # its own retry
    err = refused(c["portal"].send, pb.Document(subject="Khác nữa"), [B], client_key="k-2")
    assert reason_of(err) == "KEY_REUSED"  # within its own space, as before
    assert other.envelopes[0].message_id in {e.message_id for e in c["default"].sent_all()}


def test_the_audit_log_names_the_client_that_sent_held_and_purged(node):
    ha, c = node
    by_qlvb = c["qlvb"].send(pb.Document(subject="Của qlvb"), [B]).envelopes[0].message_id
    by_default = c["default"].send(pb.Document(subject="Của mặc định"), [B]).envelopes[0].message_id
    rows = sent_rows(ha)
    assert rows[by_qlvb] == f"to {B} by client qlvb" and rows[by_default] == f"to {B} by client default"
    c["ops"].admin.hold(B)
    c["ops"].admin.release(B)
    c["ops"].admin.purge(by_qlvb, "gửi nhầm")
    db = Database(ha.dir / "data" / "mailbox.sqlite3")
    try:
        held = [r["detail"] for r in audit.recent(db, limit=10, event=audit.HELD)]
        released = [r["detail"] for r in audit.recent(db, limit=10, event=audit.RELEASED)]
        [purged] = [r["detail"] for r in audit.recent(db, limit=10, event=audit.PURGED) if r["message_id"] == by_qlvb]
    finally:
        db.close()
    assert held[0] == released[0] == "by client ops" and purged == "gửi nhầm (by client ops)"


@pytest.mark.parametrize("who, call, scope", [
    ("monitor", lambda c: c.send(pb.Document(subject="không được gửi"), [B]), "send"),
    ("monitor", lambda c: c.admin.queues(), "admin"),
    ("qlvb", lambda c: c.admin.hold(B), "admin"),
    ("ops", lambda c: c.inbox_all(), "read"),
    ("ops", lambda c: c.send(pb.Document(subject="không được gửi"), [B]), "send"),
])
def test_a_call_outside_the_clients_scopes_is_refused_and_does_nothing(node, who, call, scope):
    ha, c = node
    before = (sent_rows(ha), c["default"].admin.queues().hops)
    err = refused(call, c[who])
    assert (err.code(), reason_of(err)) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_PERMITTED")
    assert metadata_of(err) == {"client": who, "scope": scope}
    assert (sent_rows(ha), c["default"].admin.queues().hops) == before


def test_scopes_allow_what_they_name(node):
    _, c = node
    assert c["monitor"].inbox_all() == c["default"].inbox_all()
    me = c["monitor"].whoami()
    assert (me.code, me.client, list(me.scopes)) == (A, "monitor", ["read"])
    assert (c["default"].whoami().client, list(c["default"].whoami().scopes)) == ("default", ["read", "send", "admin"])
    assert c["ops"].admin.queues().now_ms > 0


def test_the_http_face_knows_the_same_clients(node):
    ha, c = node
    address = nodes.runtime_info(ha)["http"]
    monitor, qlvb = HttpApi(address, TOKENS["monitor"]), HttpApi(address, TOKENS["qlvb"])
    try:
        status, body = monitor.call("/v1/mailbox/Send", {"document": {"subject": "x"}, "recipients": [B]})
        assert (status, body["error"]["reason"]) == (403, "NOT_PERMITTED")
        status, body = HttpApi(address, "wrong-" + TOKENS["qlvb"]).call("/v1/mailbox/ListInbox", {})
        assert (status, body["error"]["reason"]) == (401, "UNAUTHENTICATED")
        first = qlvb.mailbox("Send", {"document": {"subject": "Qua HTTP"}, "recipients": [B], "clientKey": "h-1"})
        again = c["qlvb"].send(pb.Document(subject="Qua HTTP"), [B], client_key="h-1")  # one key space, any face
        assert again.envelopes[0].message_id == first["envelopes"][0]["messageId"]
        assert sent_rows(ha)[again.envelopes[0].message_id] == f"to {B} by client qlvb"
    finally:
        monitor.close()
        qlvb.close()
