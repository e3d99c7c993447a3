"""Taking over a retired predecessor's mailbox (`lienthong takeover`, Admin.Takeover) on a province and its communes
in one process (real gRPC over mutual TLS, real SQLite files, real keys, real backups): commune X is merged into Z;
X's history (a document it received, one it sent with the status back, its own 01) is imported into Z from X's
signed backup, marked with X's code, readable with Z's seal key; every refusal writes nothing
(docs/restructuring.md, "History follows")."""
from __future__ import annotations

import pytest

from node import takeover as takeover_mod
from node.cli import EXIT_REFUSED, main
from node.envelope import Signer
from node.events import DELIVERED, SUCCESSION
from node.grpc_errors import metadata_of, reason_of
from node.harness.waiting import EventWaiter, wait_for_statuses
from node.identity import revocation, signed
from node.pb import envelope_pb2 as pb
from node.pb import evidence_pb2 as epb
from node.pb import registry_pb2 as rpb
from node.registry import successions
from node.store import audit, takeover as takeover_store
from node.transport.interface import Peer, TransportError

from tests.takeover_backups import backup_of, members, remade, write

from tests.merger_tree import P, S, X, Z, refused, tree  # noqa: F401 - tree: the fixture

TIMEOUT = 30.0
REASON = "Nghị quyết sắp xếp đơn vị hành chính cấp xã"


def keys_of(tree, code: str):
    return tree[code][1].dir / "keys"


def signer_of(tree, code: str) -> Signer:
    k = keys_of(tree, code)
    return Signer.from_files(k / "node.key", k / "node.pem")


def retire_x_into_z(tree) -> None:
    with EventWaiter(tree.client(Z), inbox=False, sent=False, registry=True) as at_z, \
            EventWaiter(tree.client(X), inbox=False, sent=False, registry=True) as at_x:
        tree.client(P).admin.issue_succession([X], Z, 0, REASON)
        for w in (at_z, at_x):
            w.wait(lambda evs: any(ev.type == SUCCESSION for ev in evs), TIMEOUT)


def history(tree) -> tuple[str, str]:
    """S sends X a document (X's node returns its 01); X sends S one and gets S's 01 back. (to X, X's doc id)."""
    x, s = tree.client(X), tree.client(S)
    with EventWaiter(x, inbox=False) as x_sent:
        to_x = s.send(pb.Document(subject="gửi xã cũ"), [X])
        wait_for_statuses(s, to_x.doc_id, {X: ["01"]}, TIMEOUT)
        from_x = x.send(pb.Document(subject="xã cũ gửi"), [S])
        wait_for_statuses(x, from_x.doc_id, {S: ["01"]}, TIMEOUT)
        x_sent.wait(lambda evs: len({ev.message_id for ev in evs if ev.type == DELIVERED}) >= 2, TIMEOUT)  # drained
    return to_x.envelopes[0].message_id, from_x.doc_id


def state(tree, code: str):
    """What a takeover could change on `code`'s node: its listings, its audit head, its takeovers."""
    c, node = tree.client(code), tree.node(code)
    return ([e.message_id for e in c.inbox_all()], [e.message_id for e in c.sent_all()], audit.head(node.db),
            takeover_store.takeovers(node.db))


def take(tree, code: str, backup, seal_key=None):
    return lambda: tree.client(code).admin.takeover(str(backup), str(seal_key) if seal_key else "")


def test_the_successor_takes_over_its_predecessors_mailbox_once_and_reads_it(tree, tmp_path, capsys):
    to_x, x_doc = history(tree)
    retire_x_into_z(tree)
    x = tree.client(X)
    x.fetch(to_x)
    x.ack(to_x)
    x.admin.retire(Z)
    assert x.admin.retire_status().drained
    good = backup_of(tree[X][1].config, tmp_path / "backups")
    ca = tmp_path / "ca"  # X's certificate is revoked as a retired node's is, and Z holds that CRL
    revocation.revoke(ca, keys_of(tree, X) / "node.pem", "cessation_of_operation")
    assert tree.node(Z).crl.offer(revocation.make_crl(ca).read_bytes(), "test")
    seal_key = keys_of(tree, X) / "seal.key"

    before = state(tree, Z)
    e = refused(take(tree, Z, good, keys_of(tree, S) / "seal.key"))  # another agency's seal key
    assert reason_of(e) == "TAKEOVER_SEAL_KEY" and state(tree, Z) == before, e
    e = refused(take(tree, S, good))  # S holds the succession, which retires X into Z, not S
    assert reason_of(e) == "TAKEOVER_NOT_PREDECESSOR" and metadata_of(e).get("successor") == Z, e

    config = str(tree[Z][1].config)
    assert main(["takeover", "--from-backup", str(good), "--seal-key", str(seal_key), "--config", config]) == 0
    out = capsys.readouterr().out
    assert f"took over {X}'s mailbox" in out and "2 received and 2 sent envelope(s) new here" in out, out

    z = tree.client(Z)
    [held] = [e for e in z.inbox_all() if e.message_id == to_x]
    assert (held.held_for, held.sender, held.acked) == (X, S, True)
    got = z.fetch(to_x)  # sealed to X: opened with Z's key, the envelope as S signed it
    assert got.signature_verified and got.payload.document.subject == "gửi xã cũ"
    assert got.path[-1].code == X and got.receipt.ByteSize() > 0
    sent = {e.message_id: e for e in z.sent_all()}
    track = z.track(x_doc)  # Track of X's old document works on Z
    assert track.held_for == X and track.subject == "xã cũ gửi"
    [r] = track.recipients
    assert r.recipient == S and [st.status_code for st in r.statuses] == ["01"] and sent[r.message_id].held_for == X

    for argv, shown in ((["inbox"], f"(received by {X}, held here)"), (["fetch", to_x], f"held for  {X}: received by it"),
                        (["sent"], f"(sent by {X}, held here)"), (["track", x_doc], f"by {X}, held here")):
        assert main([*argv, "--config", config]) == 0
        assert shown in capsys.readouterr().out, argv

    again = z.admin.takeover(str(good), str(seal_key))  # a second takeover changes nothing
    assert (again.inbox, again.sent, again.already) == (0, 0, 4)
    assert len(takeover_store.takeovers(tree.node(Z).db)) == 1
    assert tree.node(Z).metrics_state()["taken_over"] == {X: {"inbox": 2, "sent": 2}}  # counted once

    # evidence made on Z for X's history verifies: X's receipts, X's statuses, the succession linking X to Z
    for message_id in (to_x, r.message_id):
        bundle = tmp_path / f"{message_id}.evidence"
        assert main(["evidence", message_id, "--out", str(bundle), "--config", config]) == 0
        capsys.readouterr()
        assert main(["verify-evidence", str(bundle), "--ca", str(ca / "ca.pem")]) == 0
        out = capsys.readouterr().out
        assert f"held by {Z} for {X}, its predecessor" in out and f"{X} -> {Z} by {P}" in out, out
    bundle = epb.EvidenceBundle.FromString((tmp_path / f"{to_x}.evidence").read_bytes())
    body = epb.EvidenceBody.FromString(bundle.body)
    assert "status 01 by " + X in main_out(capsys, ["verify-evidence", str(tmp_path / f"{to_x}.evidence"),
                                                  "--ca", str(ca / "ca.pem")])
    forged = rpb.SignedSuccessionList.FromString(body.successions[0])  # S, not X's parent, retiring X into Z
    by_s = successions.sign(signer_of(tree, S), 1, list(rpb.SuccessionList.FromString(forged.body).successions), 1)
    for name, successions_, why in (("missing", [], "the succession link is missing"),
                                    ("forged", [by_s.SerializeToString()], f"{S} is not the parent of {X}")):
        edited = epb.EvidenceBody()
        edited.CopyFrom(body)
        del edited.successions[:]
        edited.successions.extend(successions_)
        data = edited.SerializeToString()  # signed again by Z, the maker: only the link is wrong
        out_file = tmp_path / f"{name}.evidence"
        out_file.write_bytes(epb.EvidenceBundle(body=data, signature=signed.sign(signer_of(tree, Z), data).signature)
                             .SerializeToString())
        assert main(["verify-evidence", str(out_file), "--ca", str(ca / "ca.pem")]) == 3
        out = capsys.readouterr().out
        assert out.startswith("REFUSED") and why in out, out


def main_out(capsys, argv) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out


def test_every_refusal_writes_nothing(tree, tmp_path, monkeypatch):
    to_x, _ = history(tree)
    x = tree.client(X)
    x.admin.hold(P)  # X's one hop: what X sends now stays queued
    waiting = x.send(pb.Document(subject="còn trong hàng đợi"), [S]).envelopes[0].message_id
    queued = backup_of(tree[X][1].config, tmp_path / "queued")
    with EventWaiter(x, inbox=False) as x_sent:
        x.admin.release(P)
        x_sent.wait(lambda evs: any(ev.type == DELIVERED and ev.message_id == waiting for ev in evs), TIMEOUT)
    retire_x_into_z(tree)
    good = backup_of(tree[X][1].config, tmp_path / "good")
    bad = tmp_path / "bad"
    bad.mkdir()
    xs = signer_of(tree, X)
    parts = members(good)
    db = bytearray(parts["mailbox.sqlite3"])
    db[len(db) // 2] ^= 0x01

    def swap_envelopes(conn):  # X's received document carries another message's envelope
        other = conn.execute("SELECT raw FROM outbox_envelope LIMIT 1").fetchone()[0]
        conn.execute("UPDATE inbox_envelope SET raw = ? WHERE message_id = ?", (other, to_x))

    manifest = parts["manifest.json"].replace(b'"created": "', b'"created": "1')  # edited after it was signed
    cases = [
        ("BACKUP_BAD_SIGNATURE", write(bad / "flipped.tar", {**parts, "mailbox.sqlite3": bytes(db)})),
        ("BACKUP_BAD_SIGNATURE", write(bad / "edited.tar", {**parts, "manifest.json": manifest})),
        ("BACKUP_UNSIGNED", remade(good, bad / "unsigned.tar", xs, sign=False)),
        ("BACKUP_FOREIGN_KEY", remade(good, bad / "foreign.tar", signer_of(tree, S))),  # S's key, X's name
        ("TAKEOVER_NOT_DRAINED", queued),
        ("MALFORMED", remade(good, bad / "swapped.tar", xs, database=swap_envelopes)),
    ]
    before = state(tree, Z)
    for reason, backup in cases:
        e = refused(take(tree, Z, backup))
        assert reason_of(e) == reason, (reason, e)
        assert state(tree, Z) == before, reason
    monkeypatch.setattr(takeover_mod, "MAX_ROWS", 1)
    e = refused(take(tree, Z, good))
    assert reason_of(e) == "TAKEOVER_TOO_LARGE" and metadata_of(e).get("limit") == "1", e
    assert state(tree, Z) == before
    monkeypatch.undo()
    monkeypatch.setattr(tree.node(Z).takeovers, "max_envelope", 100)  # messages.max_size: an envelope over it
    e = refused(take(tree, Z, good))
    assert reason_of(e) == "TAKEOVER_TOO_LARGE" and metadata_of(e).get("limit") == "100", e
    assert state(tree, Z) == before
    monkeypatch.undo()
    assert tree.client(Z).admin.takeover(str(good), "").inbox >= 1  # the good one still goes in
    e = refused(lambda: tree.client(Z).admin.takeover("relative/path.tar", ""))
    assert reason_of(e) == "INVALID_REQUEST" and metadata_of(e).get("field") == "backup"
    assert reason_of(refused(lambda: tree.client(Z).admin.takeover("/dev/zero", ""))) == "INVALID_REQUEST"
    assert main(["takeover", "--from-backup", str(queued), "--config", str(tree[Z][1].config)]) == EXIT_REFUSED


def test_a_backup_signed_by_a_compromised_key_is_refused(tree, tmp_path):
    history(tree)
    retire_x_into_z(tree)
    good = backup_of(tree[X][1].config, tmp_path / "backups")
    ca = tmp_path / "ca"
    revocation.revoke(ca, keys_of(tree, X) / "node.pem", "key_compromise")
    assert tree.node(Z).crl.offer(revocation.make_crl(ca).read_bytes(), "test")
    before = state(tree, Z)
    e = refused(take(tree, Z, good))
    assert reason_of(e) == "TAKEOVER_REVOKED" and metadata_of(e).get("revocation") == "key_compromise", e
    assert state(tree, Z) == before


def test_a_retiring_node_hands_its_mailbox_over_to_its_successor(tree, capsys):
    to_x, x_doc = history(tree)
    x = tree.client(X)
    e = refused(x.admin.hand_over)  # not retiring: nothing to hand over, nobody to hand it to
    assert reason_of(e) == "NOT_RETIRING", e
    retire_x_into_z(tree)
    x.admin.hold(P)  # something still waits to leave X: not drained
    x.admin.retire(Z)
    x.set_status(to_x, "03")
    e = refused(x.admin.hand_over)
    assert reason_of(e) == "TAKEOVER_NOT_DRAINED" and metadata_of(e).get("count") == "1", e
    assert state(tree, Z)[3] == []
    with EventWaiter(x, inbox=False) as x_sent:
        x.admin.release(P)
        x_sent.wait(lambda _: x.admin.retire_status().queued == 0, TIMEOUT)

    config = str(tree[X][1].config)
    assert main(["retire", "--hand-over", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "2 received and 3 sent envelope(s) new there" in out and "5 sealed one(s) readable there" in out, out
    z = tree.client(Z)
    [held] = [e for e in z.inbox_all() if e.message_id == to_x]
    assert held.held_for == X and held.status == "03"  # where X's agency left it
    assert z.fetch(to_x).payload.document.subject == "gửi xã cũ"  # X's keys were never sent: re-wrapped by X for Z
    assert z.track(x_doc).held_for == X
    again = x.admin.hand_over()  # again: the successor holds it all already
    assert (again.inbox, again.sent, again.already) == (0, 0, 5)

    stranger = tree.node(S).transport  # S is no predecessor of Z: refused before a byte is kept
    with pytest.raises(TransportError) as e:
        stranger.hand_over(Peer(Z, tree[Z][1].listen), rpb.HandOverChunk(backup_sha256="0" * 64, total=10,
                                                                       data=b"x" * 10), 5)
    assert e.value.refused.reason.wire == "TAKEOVER_NOT_PREDECESSOR", e.value
