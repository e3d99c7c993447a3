"""What an admin does to a running tree, on real node processes: a province P and a district D under it.

The processes are shared by the module's tests (each leaves them running and registered)."""
from __future__ import annotations


import contextlib
import sqlite3
import threading
import time

import grpc
import pytest

from node.cli import main
from node.grpc_errors import fields_of, reason_of
from node.harness import nodes
from node.harness.inproc import FAST_REGISTRY
from node.harness.nodes import NodeSpec
from node.harness.waiting import EventWaiter

P, D, C = "000.00.00.H53", "000.00.35.H53", "000.23.35.H53"  # C, a commune under D, starts late
TIMEOUT = 30.0


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("admin")
    ca = nodes.make_ca(root)
    addresses = {code: f"127.0.0.1:{nodes.free_port()}" for code in (P, D, C)}
    # P retries slowly: a delivery that happens soon after D comes back proves the backoff was reset
    hp = nodes.prepare_node(root, ca, NodeSpec(P, "Tỉnh P", extra={**FAST_REGISTRY,
                                                                 "retry": {"first_delay": "60s", "max_delay": "10m"}}),
                            addresses)
    hd = nodes.prepare_node(root, ca, NodeSpec(D, "Huyện D", peers={P: P}, parent=P, extra=FAST_REGISTRY), addresses)
    hc = nodes.prepare_node(root, ca, NodeSpec(C, "Xã C", peers={D: D}, parent=D, extra=FAST_REGISTRY), addresses)
    handles = {P: hp, D: hd, C: hc}
    try:
        nodes.start(hp)
        nodes.wait_healthy([hp], TIMEOUT)
        nodes.start_registered(hp, hd, TIMEOUT)
        yield root, ca, handles
    finally:
        for h in handles.values():
            nodes.terminate(h)


def restart_and_wait_registered(p, d, between=lambda: None) -> None:
    """Stop D, run `between`, start D again; return once P has seen it register."""
    assert nodes.terminate(d) == 0, nodes.tail(d)
    between()
    nodes.start_registered(p, d, TIMEOUT)


def test_a_renewed_certificate_is_accepted_by_the_parent_on_the_old_keys_word(tree, capsys):
    _, ca, h = tree
    keys = h[D].dir / "keys"
    old_key, old_cert = (keys / "node.key").read_bytes(), (keys / "node.pem").read_bytes()

    def renew():
        assert main(["renew", "--config", str(h[D].config)]) == 0
        assert (keys / "renew" / "node.csr").exists() and (keys / "node.key").read_bytes() == old_key
        assert main(["ca", "sign", "--ca", str(ca), str(keys / "renew" / "node.csr")]) == 0
        assert main(["renew", "--config", str(h[D].config), "--install"]) == 0

    restart_and_wait_registered(h[P], h[D], renew)  # P refuses a second certificate unless the old key signs it

    assert (keys / "node.key.previous").read_bytes() == old_key
    assert (keys / "node.pem.previous").read_bytes() == old_cert
    assert (keys / "node.pem").read_bytes() != old_cert
    assert "co-signed by the previous key" in h[D].log_path.read_text()
    assert "CERT_IN_USE" not in h[P].log_path.read_text()
    capsys.readouterr()


def bounded_poll(client, check, what: str, timeout: float = TIMEOUT):
    """Ask an RPC again until `check()` gives something truthy; between tries, wait on the node's events
    (at most a second), never on a sleep."""
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        with EventWaiter(client, inbox=False, sent=True, registry=True) as ev:
            try:
                ev.wait(lambda evs: bool(evs), min(1.0, max(0.05, deadline - time.monotonic())))
            except TimeoutError:
                pass
    raise TimeoutError(f"{what} not seen in {timeout}s")


def test_queued_documents_leave_as_soon_as_the_peer_registers_again(tree):
    """P backs off 60 s or more after D fails; D's registration resets that, so its queue leaves at once."""
    from node.pb import envelope_pb2 as pb
    _, _, h = tree
    p = h[P].client()
    assert nodes.terminate(h[D]) == 0
    [sent] = p.send(pb.Document(subject="Công văn chờ"), [D]).envelopes
    # P tried once, failed, and now waits its first_delay (60 s x jitter)
    bounded_poll(p, lambda: [e for e in p.sent_all(state="pending") if e.message_id == sent.message_id and e.attempts],
                 "a failed attempt")

    with EventWaiter(p, inbox=False, sent=True, registry=True) as ev:
        nodes.start(h[D])
        evs = ev.wait(lambda evs: any(e.type == "delivered" and e.message_id == sent.message_id for e in evs), 15)
    registered = [e for e in evs if e.type == "registered" and e.peer == D]
    delivered = [e for e in evs if e.type == "delivered" and e.message_id == sent.message_id]
    assert registered and delivered
    print(f"\nqueue drained {delivered[0].time_ms - registered[0].time_ms} ms after {D} registered")
    assert f"link to {D} is back (registered)" in h[P].log_path.read_text()


def kept_home_row(client, hop: str, timeout: float = TIMEOUT):
    """Paced reads of the admin's queues until `hop`'s row shows mail kept home (no event says so)."""
    deadline, pace = time.monotonic() + timeout, threading.Event()
    while True:
        rows = [q for q in client.admin.queues().hops if q.hop == hop and q.kept_home]
        if rows:
            return rows[0]
        assert time.monotonic() < deadline, f"nothing kept home for {hop} after {timeout}s"
        pace.wait(0.1)


def test_mail_for_a_commune_not_registered_yet_waits_at_its_sender_and_goes_sealed_once_it_is(tree, capsys):
    """D has no child yet: mail for C, below D by the code rule, is "not yet", not "no such agency". No seal key
    can be had for C, so P keeps it home (sealing.mode required, the default), which the admin sees; once C
    has registered, `lienthong retry` sends it, sealed to C's key."""
    from node.pb import envelope_pb2 as pb
    _, _, h = tree
    p, d, cfg = h[P].client(), h[D].client(), str(h[P].config)
    [sent] = p.send(pb.Document(subject="Gửi xã chưa đăng ký"), [C]).envelopes
    row = kept_home_row(p, D)
    assert (row.depth, row.kept_home, row.parked) == (1, 1, 0)  # waits for C's registration, not for a link
    [entry] = [e for e in p.sent_all() if e.message_id == sent.message_id]
    # it waits for C's registration at P itself, handed to no relay (not delivered)
    assert (entry.state, entry.delivered_ms) == ("not_registered_yet", 0) and "NOT_REGISTERED_YET" in entry.reason
    assert not [e for e in p.inbox_all() if e.kind == pb.NOTICE]
    assert not [q for q in d.admin.queues().hops if q.hop == C]  # no relay holds it
    capsys.readouterr()
    assert main(["queues", "--config", cfg]) == 0
    [line] = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(D)]
    assert line.split()[1:4] == ["1", "0", "1"]  # depth, parked, kept

    nodes.start_registered(h[D], h[C], TIMEOUT)
    with EventWaiter(d, inbox=False) as ev:
        assert main(["retry", "--config", cfg, D]) == 0
        ev.wait(lambda evs: any(e.type == "delivered" and e.message_id == sent.message_id and e.peer == C
                                for e in evs), TIMEOUT)
    [got] = h[C].client().inbox_all()
    assert got.message_id == sent.message_id and got.subject == "Gửi xã chưa đăng ký"
    with contextlib.closing(sqlite3.connect(f"{(h[D].dir / 'data' / 'mailbox.sqlite3').resolve().as_uri()}?mode=ro",
                                            uri=True)) as db:
        [(raw,)] = db.execute("SELECT raw FROM outbox_envelope WHERE message_id = ?", (sent.message_id,)).fetchall()
    assert pb.Header.FromString(pb.Envelope.FromString(raw).header).seal == pb.SEALED_P256_AES256GCM


def test_an_admin_sees_holds_releases_retries_and_purges_a_queue(tree, capsys):
    from node.pb import envelope_pb2 as pb
    from node.store import audit
    from node.store.database import Database
    _, _, h = tree
    p, cfg = h[P].client(), str(h[P].config)
    assert main(["hold", "--config", cfg, D]) == 0
    keep, drop = (p.send(pb.Document(subject=s), [D]).envelopes[0] for s in ("giữ lại", "huỷ"))

    [row] = [q for q in p.admin.queues().hops if q.hop == D]
    assert (row.depth, row.held, row.parked) == (2, True, 0) and row.oldest_ms > 0
    capsys.readouterr()
    assert main(["queues", "--config", cfg]) == 0
    [line] = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(D)]
    assert line.split()[1] == "2" and " yes " in line
    assert main(["retry", "--config", cfg, D]) == 4  # a held hop is not retried: it says so, and fails
    assert f"(HELD): {D} is held: release it first" in capsys.readouterr().err
    assert main(["retry", "--config", cfg]) == 0  # every hop: the held ones are named
    assert f"held (release first): {D}" in capsys.readouterr().out

    with EventWaiter(p) as ev:
        assert main(["purge", "--config", cfg, drop.message_id, "--reason", "gửi nhầm nơi nhận"]) == 0
        ev.wait(lambda evs: any(e.type == "arrived" and e.kind == pb.NOTICE for e in evs), TIMEOUT)
        assert main(["release", "--config", cfg, D]) == 0
        ev.wait(lambda evs: any(e.type == "delivered" and e.message_id == keep.message_id for e in evs), TIMEOUT)
    [notice] = [p.fetch(e.message_id).payload.notice for e in p.inbox_all() if e.kind == pb.NOTICE
                if p.fetch(e.message_id).payload.notice.ref_message_id == drop.message_id]
    assert (notice.reason, notice.detail) == ("PURGED", "gửi nhầm nơi nhận")
    [entry] = [e for e in p.sent_all() if e.message_id == drop.message_id]
    assert entry.state == "rejected" and entry.reason.startswith("PURGED")
    db = Database(h[P].dir / "data" / "mailbox.sqlite3")
    try:
        [purged] = audit.recent(db, event=audit.PURGED)
        assert (purged["message_id"], purged["detail"]) == (drop.message_id, "gửi nhầm nơi nhận (by client default)")
    finally:
        db.close()
    assert not [q for q in p.admin.queues().hops if q.hop == D and (q.depth or q.held)]
    assert main(["purge", "--config", cfg, drop.message_id, "--reason", "again"]) == 4
    assert "(NOT_QUEUED)" in capsys.readouterr().err


@pytest.mark.parametrize("call, field", [
    (lambda a: a.hold("../etc"), "hop"),
    (lambda a: a.release(""), "hop"),
    (lambda a: a.retry("x" * 100), "hop"),
    (lambda a: a.purge("0" * 32, ""), "reason"),
    (lambda a: a.purge("0" * 32, "x" * 501), "reason"),
])
def test_admin_refuses_what_is_not_a_hop_or_a_reason_and_changes_nothing(tree, call, field):
    _, _, h = tree
    admin = h[P].client().admin
    before = admin.queues().hops
    with pytest.raises(grpc.RpcError) as e:
        call(admin)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (reason_of(e.value), fields_of(e.value)) == ("INVALID_REQUEST", [field])
    assert admin.queues().hops == before


NOBODY = "000.00.99.H53"  # a well-formed code that is nobody's next hop here


@pytest.mark.parametrize("command", [["retry", NOBODY], ["hold", NOBODY], ["release", NOBODY], ["retry", "garbage"],
                                     ["queue", "list", "--hop", NOBODY]])
def test_a_hop_that_is_not_a_neighbour_is_refused_with_its_reason_and_exit_4(tree, capsys, command):
    """`retry garbage` printed "retrying now" and exited 0; `release` of a code nobody routes to left a
    peer_state row and a metric series for it forever."""
    from node.store import peers
    from node.store.database import Database
    _, _, h = tree
    cfg = str(h[P].config)
    capsys.readouterr()
    assert main([*command, "--config", cfg]) == 4
    err = capsys.readouterr().err
    assert "(NOT_A_HOP)" in err and f"{command[-1]} is not a next hop" in err, err
    assert "retrying now" not in err
    assert not [q for q in h[P].client().admin.queues().hops if q.hop == command[-1]]
    db = Database(h[P].dir / "data" / "mailbox.sqlite3")
    try:
        assert command[-1] not in {s.code for s in peers.all_states(db)}
    finally:
        db.close()


def test_one_message_is_held_listed_retried_only_once_released_and_sent(tree, capsys):
    """Postfix's postsuper -h / -H for one message: the rest of its hop's queue goes, it stays."""
    from node.pb import envelope_pb2 as pb
    _, _, h = tree
    p, cfg = h[P].client(), str(h[P].config)
    assert main(["hold", "--config", cfg, D]) == 0
    kept, other = (p.send(pb.Document(subject=s), [D]).envelopes[0].message_id for s in ("giữ một", "đi trước"))
    first = p.admin.list_queue(D, limit=1)  # a page at a time, in queue order
    second = p.admin.list_queue(D, after_seq=first.next_after_seq, limit=1)
    assert [m.message_id for m in (*first.messages, *second.messages)] == [kept, other]
    assert first.next_after_seq and not second.next_after_seq
    with pytest.raises(grpc.RpcError) as e:
        p.admin.list_queue(D, limit=1001)
    assert (reason_of(e.value), fields_of(e.value)) == ("INVALID_REQUEST", ["limit"])
    capsys.readouterr()
    assert main(["queue", "hold", "--config", cfg, kept]) == 0
    assert f"{kept} held" in capsys.readouterr().out
    with EventWaiter(p, inbox=False) as ev:
        assert main(["release", "--config", cfg, D]) == 0
        ev.wait(lambda _: other in ev.ids("delivered"), TIMEOUT)
    assert main(["queue", "list", "--config", cfg, "--hop", D]) == 0
    [line] = [ln for ln in capsys.readouterr().out.splitlines() if kept in ln]
    assert f" {P} " in line and f" {D} " in line and " held " in line and "document" in line
    [m] = [m for m in p.admin.list_queue_all(D) if m.message_id == kept]
    assert (m.held, m.sender, m.recipient, m.origin) == (True, P, D, "local") and m.size > 0

    assert main(["queue", "retry", "--config", cfg, kept]) == 4  # held: says so, sends nothing
    assert f"(HELD): {kept} is held" in capsys.readouterr().err
    with EventWaiter(p, inbox=False) as ev:
        assert main(["queue", "release", "--config", cfg, kept]) == 0
        ev.wait(lambda _: kept in ev.ids("delivered"), TIMEOUT)
    assert not p.admin.list_queue_all(D)
    capsys.readouterr()
    assert main(["queue", "hold", "--config", cfg, kept]) == 4
    assert "(NOT_QUEUED)" in capsys.readouterr().err
    assert main(["queue", "retry", "--config", cfg, "0" * 32]) == 4
    assert "NOT_FOUND: no envelope" in capsys.readouterr().err


def handed_over_in_clear(sender, relay, recipient: str, payload) -> str:
    """An envelope `sender`'s key signs, unsealed, handed to `relay` over mutual TLS as `sender`; its id."""
    from node import envelope
    from node.envelope import Signer
    from node.transport.grpc_peers import TlsMaterial, open_channel
    from node.pb import exchange_pb2 as xpb
    from node.pb import exchange_pb2_grpc as xgrpc
    keys = sender.dir / "keys"
    header, raw = envelope.seal(Signer.from_files(keys / "node.key", keys / "node.pem"), recipient, payload,
                                lifetime_s=3600)
    tls = TlsMaterial(*((keys / f).read_bytes() for f in ("node.key", "node.pem", "ca.pem")))
    with contextlib.closing(open_channel(tls, relay.code, relay.listen, 1 << 20)) as channel:
        answer = xgrpc.ExchangeStub(channel).DeliverBatch(xpb.DeliverBatchRequest(envelopes=[raw]), timeout=TIMEOUT)
    assert answer.outcomes[0].WhichOneof("result") == "receipt", answer
    return header.message_id


def test_a_relay_lists_parked_mail_and_purges_it_by_id_with_a_notice_to_its_sender(tree, capsys):
    """D parks P's mail for a commune that never registers; its operator finds the id and purges it,
    and the notice to P is made at once (PURGED), not after limits.park_for. A reason with a terminal escape is refused.
    The mail is handed over in clear as a node older than sealing would (P's key and certificate): P itself
    would keep it home, as no seal key can be had for that commune (sealing.mode required)."""
    from node.pb import envelope_pb2 as pb
    _, _, h = tree
    nobody_yet = "000.24.35.H53"  # a commune under D by the code rule, never set up
    p, d, cfg = h[P].client(), h[D].client(), str(h[D].config)
    mid = handed_over_in_clear(h[P], h[D], nobody_yet, pb.Payload(document=pb.Document(subject="chờ xã")))
    capsys.readouterr()
    assert main(["queue", "list", "--config", cfg, "--parked"]) == 0
    [line] = [ln for ln in capsys.readouterr().out.splitlines() if mid in ln]
    assert f" {P} " in line and f" {nobody_yet} " in line and "parked" in line
    [m] = d.admin.list_queue_all(parked=True)
    assert (m.message_id, m.origin, m.parked, m.park_until_ms > m.created_ms) == (mid, "relay", True, True)

    assert main(["queue", "purge", "--config", cfg, mid, "--reason", "sai mã\x1b[2J\nxã"]) == 4
    assert "(UNPRINTABLE)" in capsys.readouterr().err
    assert main(["queue", "purge", "--config", cfg, mid, "--reason", "sai mã\x1b[2Jxã"]) == 4
    assert [m.message_id for m in d.admin.list_queue_all(parked=True)] == [mid]  # refused: nothing changed

    assert main(["queue", "purge", "--config", cfg, mid, "--reason", "mã xã chưa có"]) == 0
    assert not d.admin.list_queue_all(parked=True)
    # D made P's PURGED notice at once, in the purge's own transaction, not after limits.park_for. (P never
    # sent this envelope itself, the test signed it with P's key, so P would refuse a notice about it:
    # NOTICE_OFF_ROUTE, issue 18 item 8; a node hears only about what it sent.)
    uri = f"{(h[D].dir / 'data' / 'mailbox.sqlite3').resolve().as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        made = db.execute("SELECT recipient, kind, subject FROM outbox WHERE ref_message_id = ?", (mid,)).fetchall()
    assert made == [(P, pb.NOTICE, "not delivered: PURGED")]
