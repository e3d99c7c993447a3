"""The tamper-evident log and evidence, on real node processes: commune C → district D → province P.

C sends P a document; P takes it (automatic 01) and answers 03; C's audit chain is checkpointed
and handed to D, its parent. C is then stopped, and copies of its data directory are tampered
with as an attacker holding the file would (triggers dropped, rows edited with sqlite3):
`lienthong audit verify` names each edit against the chain, C's own checkpoint and D's copy.
An evidence bundle of the document is verified offline with only the CA's certificate, and
refused after any one byte of it is changed."""
from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.audit.chain import entry_hash
from node.cli import main
from node import preflight
from node.clock import SYSTEM
from node.config import load_config
from node.evidence import check, make
from node.identity.trust import TrustStore
from node.pb import evidence_pb2 as epb
from node.harness import nodes
from node.harness.inproc import FAST_REGISTRY
from node.harness.nodes import NodeSpec, audit_chain as _chain, mailbox_path as _mailbox
from node.harness.waiting import EventWaiter
from node.identity import certs, revocation
from node.pb import envelope_pb2 as pb
from node.store import audit
from node.store.database import Database

P, D, C = "000.00.00.H53", "000.00.35.H53", "000.21.35.H53"
TIMEOUT = 60.0
EXTRA = {**FAST_REGISTRY, "audit": {"checkpoint_every": "300ms"}}



@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit")
    ca = nodes.make_ca(root)
    addresses = {code: f"127.0.0.1:{nodes.free_port()}" for code in (P, D, C)}
    hp = nodes.prepare_node(root, ca, NodeSpec(P, "Tỉnh P", extra=EXTRA), addresses)
    hd = nodes.prepare_node(root, ca, NodeSpec(D, "Huyện D", peers={P: P}, parent=P, extra=EXTRA), addresses)
    hc = nodes.prepare_node(root, ca, NodeSpec(C, "Xã C", peers={D: D}, parent=D, extra=EXTRA), addresses)
    handles = [hp, hd, hc]
    try:
        nodes.start(hp)
        nodes.wait_healthy([hp], TIMEOUT)
        nodes.start_registered(hp, hd, TIMEOUT)
        nodes.start_registered(hd, hc, TIMEOUT)
        c, p = hc.client(), hp.client()
        with EventWaiter(c, registry=True) as ev:
            sent = c.send(pb.Document(subject="Công văn về kiểm toán"), [P])
            mid = sent.envelopes[0].message_id
            statuses = lambda code: [e for e in ev.events if e.type == "arrived" and e.ref_message_id == mid  # noqa: E731
                                     and e.status_code == code]
            ev.wait(lambda _: mid in ev.ids("delivered") and statuses("01"), TIMEOUT)
            p.set_status(mid, "03", "đã tiếp nhận")
            ev.wait(lambda _: statuses("03"), TIMEOUT)
            head = _chain(hc.dir)[-1].seq  # C is quiet now: the last checkpoint D takes covers it
            ev.wait(lambda evs: any(e.type == "checkpoint" and e.peer == D and e.seq >= head for e in evs), TIMEOUT)
        assert nodes.terminate(hc) == 0  # the file stands still from here; D keeps serving its copy
        yield root, ca, hp, hd, hc, mid, sent.doc_id
    finally:
        for h in reversed(handles):
            nodes.terminate(h)


def _copy(tree, tmp_path, parent_address: str | None = None) -> Path:
    """A copy of C's node directory (keys, config, data) for one attack; its config points at the copy."""
    hc = tree[4]
    d = tmp_path / "C"
    shutil.copytree(hc.dir, d, ignore=shutil.ignore_patterns("lienthong.lock", "runtime.json"))
    if parent_address is not None:
        cfg = yaml.safe_load((d / "node.yaml").read_text())
        cfg["peers"] = [{**peer, "address": parent_address} for peer in cfg["peers"]]
        (d / "node.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
    return d


def _attack(node_dir: Path, *sql: str, params=()) -> None:
    conn = sqlite3.connect(_mailbox(node_dir))
    conn.execute("DROP TRIGGER IF EXISTS audit_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    for s in sql:
        conn.execute(s, params) if "?" in s else conn.execute(s)
    conn.commit()
    conn.close()


def _verify(capsys, node_dir: Path, *more: str) -> tuple[int, str]:
    capsys.readouterr()
    status = main(["audit", "verify", "--config", str(node_dir / "node.yaml"), *more])
    return status, capsys.readouterr().out


def _sent_row(node_dir: Path) -> int:
    """A row inside the chain (C's: sent, delivered, then the statuses received): the one after the first."""
    rows = _chain(node_dir)
    assert len(rows) >= 4 and rows[0].event == audit.SENT, rows
    return 2


def test_an_untouched_log_is_intact_against_its_own_checkpoint_and_the_parents_copy(tree, capsys):
    hc = tree[4]
    head = _chain(hc.dir)[-1].seq
    status, out = _verify(capsys, hc.dir)
    assert status == 0, out
    assert f"intact: {head} rows, head at seq {head}" in out
    assert f"own checkpoint at seq {head}" in out and f"parent's copy at {D} at seq {head}" in out
    assert "OFFLINE" not in out


def test_the_chain_records_each_custody_event_with_what_it_rests_on(tree):
    """C's log: the document queued, handed over on a receipt (named by its digest), each status taken in
    (named by its envelope's digest)."""
    hc, mid = tree[4], tree[5]
    rows = _chain(hc.dir)
    assert [(r.event, r.message_id == mid) for r in rows[:2]] == [(audit.SENT, True), (audit.DELIVERED, True)]
    assert rows[0].detail == f"to {P} by client default" and rows[0].peer == D  # sent through the API, by its client
    assert rows[1].detail.startswith("receipt sha256 ") and len(rows[1].detail) == len("receipt sha256 ") + 64
    assert [r.event for r in rows[2:]] == [audit.RECEIVED, audit.RECEIVED]
    assert all(r.detail.startswith(f"status from {P} sha256 ") for r in rows[2:])


def test_the_parent_keeps_the_childs_latest_checkpoint(tree):
    hd, hc = tree[3], tree[4]
    conn = sqlite3.connect(f"{_mailbox(hd.dir).as_uri()}?mode=ro", uri=True)
    try:
        kept = conn.execute("SELECT max(seq), count(*) FROM child_checkpoint WHERE code = ?", (C,)).fetchone()
    finally:
        conn.close()
    assert kept[0] == _chain(hc.dir)[-1].seq and kept[1] >= 1


def test_an_edited_row_is_named(tree, tmp_path, capsys):
    d = _copy(tree, tmp_path)
    seq = _sent_row(d)
    _attack(d, f"UPDATE audit SET detail = 'to 000.00.01.H53' WHERE seq = {seq}")
    status, out = _verify(capsys, d)
    assert status == 3, out
    assert f"BROKEN seq {seq}: edited:" in out and out.count("BROKEN seq") == 1, out


def test_a_deleted_row_is_named(tree, tmp_path, capsys):
    d = _copy(tree, tmp_path)
    seq = _sent_row(d)
    _attack(d, f"DELETE FROM audit WHERE seq = {seq}")
    status, out = _verify(capsys, d)
    assert status == 3, out
    assert f"BROKEN seq {seq + 1}: deleted: seq {seq} missing" in out, out


def test_a_reordered_pair_is_named(tree, tmp_path, capsys):
    d = _copy(tree, tmp_path)
    seq = _sent_row(d)
    _attack(d, f"UPDATE audit SET seq = -1 WHERE seq = {seq}", f"UPDATE audit SET seq = {seq} WHERE seq = {seq + 1}",
            f"UPDATE audit SET seq = {seq + 1} WHERE seq = -1")
    status, out = _verify(capsys, d)
    assert status == 3, out
    assert f"BROKEN seq {seq}: reordered: holds the entry written as seq {seq + 1}" in out, out
    assert f"BROKEN seq {seq + 1}: reordered: holds the entry written as seq {seq}" in out, out


def test_a_log_cut_short_is_named_by_the_checkpoints(tree, tmp_path, capsys):
    d = _copy(tree, tmp_path)
    last = _chain(d)[-1].seq
    _attack(d, f"DELETE FROM audit WHERE seq = {last}")
    status, out = _verify(capsys, d)
    assert status == 3, out
    assert f"BROKEN seq {last}: truncated:" in out and f"log ends at seq {last - 1}" in out, out


def test_a_rewritten_chain_without_its_own_checkpoints_is_caught_by_the_parents_copy(tree, tmp_path, capsys):
    """The attacker edits a row, recomputes every hash after it and removes the node's own checkpoints:
    the chain is self-consistent again, but not the head the node signed and its parent keeps."""
    d = _copy(tree, tmp_path)
    seq = _sent_row(d)
    rows = _chain(d)
    conn = sqlite3.connect(_mailbox(d))
    conn.execute("DROP TRIGGER audit_no_update")
    prev = rows[seq - 2].hash
    for r in rows[seq - 1:]:
        detail = "to 000.00.01.H53" if r.seq == seq else r.detail
        h = entry_hash(r.seq, r.time_ms, r.event, r.message_id, r.peer, detail, prev)
        conn.execute("UPDATE audit SET detail = ?, prev_hash = ?, hash = ? WHERE seq = ?", (detail, prev, h, r.seq))
        prev = h
    conn.execute("DELETE FROM audit_checkpoint")
    conn.commit()
    conn.close()
    status, out = _verify(capsys, d)
    assert status == 3, out
    assert f"BROKEN seq {rows[-1].seq}: rewritten:" in out and f"parent's copy at {D}" in out, out
    assert out.count("BROKEN seq") == 1, out


def test_an_unreachable_parent_means_an_offline_check_that_says_so(tree, tmp_path, capsys):
    d = _copy(tree, tmp_path, parent_address=f"127.0.0.1:{nodes.free_port()}")
    status, out = _verify(capsys, d)
    assert status == 0, out
    assert f"OFFLINE: parent {D}" in out and "own checkpoint at seq" in out, out
    status, out = _verify(capsys, tree[4].dir, "--offline")
    assert status == 0 and "OFFLINE (--offline)" in out, out


# ---- evidence ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bundle(tree, tmp_path_factory):
    root, ca, hp, hd, hc, mid, _ = tree
    out = tmp_path_factory.mktemp("evidence") / "evidence.bin"
    assert main(["evidence", mid, "--config", str(hc.config), "--out", str(out)]) == 0
    return out, ca / "ca.pem", mid


def test_a_bundle_of_a_sent_delivered_answered_document_is_verified_offline(bundle, capsys):
    path, ca, mid = bundle
    capsys.readouterr()
    assert main(["verify-evidence", str(path), "--ca", str(ca)]) == 0
    out = capsys.readouterr().out
    assert f"evidence for document {mid}" in out
    assert f"sent:     by {C} (" in out and f"to {P}" in out
    assert f"custody:  taken over by {D} at" in out          # the first hop's receipt
    assert f"status:   status 01 by {P}" in out and f"status:   status 03 by {P}" in out
    assert f"path {P} at" in out and f"-> {D} at" in out     # the statuses' signed relay marks
    assert f"taken over by {C} at" in out                    # C's own receipts for the statuses
    assert f"received: {P} held the document by" in out


def test_the_recipients_bundle_proves_its_custody_and_the_path(tree, tmp_path, capsys):
    root, ca, hp, hd, hc, mid, _ = tree
    out = tmp_path / "at-p.bin"
    assert main(["evidence", mid, "--config", str(hp.config), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["verify-evidence", str(out), "--ca", str(ca / "ca.pem")]) == 0
    text = capsys.readouterr().out
    assert f"path:     {C} at" in text and f"-> {D} at" in text
    assert f"custody:  taken over by {P} at" in text
    assert f"status:   status 03 by {P}" in text


def test_the_send_names_its_one_message_and_an_unknown_name_exits_2(tree, tmp_path, capsys):
    hc, mid, doc_id = tree[4], tree[5], tree[6]
    out = tmp_path / "by-doc.bin"
    capsys.readouterr()
    assert main(["evidence", doc_id, "--config", str(hc.config), "--out", str(out)]) == 0
    assert f"sent message {mid}" in capsys.readouterr().out
    assert main(["evidence", "khong-co", "--config", str(hc.config), "--out", str(tmp_path / "none.bin")]) == 2
    assert "khong-co: no message" in capsys.readouterr().err
    assert main(["evidence", mid, "--config", str(hc.config), "--out", str(out)]) == 2  # never overwritten


def test_payloads_are_sealed_so_statuses_are_read_through_disclosed_keys_and_the_document_only_on_request(
        tree, bundle, tmp_path, capsys):
    """The statuses and the document travelled sealed: the bundle shows a status's code because its maker
    disclosed the status's content key; the document's content only with --disclose."""
    root, ca, hp, hd, hc, mid, _ = tree
    body = epb.EvidenceBody.FromString(epb.EvidenceBundle.FromString(bundle[0].read_bytes()).body)
    assert all(pb.Header.FromString(pb.Envelope.FromString(i.envelope).header).seal == pb.SEALED_P256_AES256GCM
               for i in (body.document, *body.statuses))
    assert not body.document.content_key and all(len(i.content_key) == 32 for i in body.statuses)
    capsys.readouterr()
    assert main(["verify-evidence", str(bundle[0]), "--ca", str(bundle[1])]) == 0
    assert "content:  subject" not in capsys.readouterr().out
    out = tmp_path / "disclosed.bin"
    assert main(["evidence", mid, "--config", str(hc.config), "--out", str(out), "--disclose"]) == 0
    capsys.readouterr()
    assert main(["verify-evidence", str(out), "--ca", str(ca / "ca.pem")]) == 0
    assert 'content:  subject "Công văn về kiểm toán"' in capsys.readouterr().out


def test_a_disclosed_key_that_does_not_open_its_payload_is_refused_even_when_the_maker_signs_it(
        tree, tmp_path, capsys):
    """A maker who lies about a status's content (another key) signs a bundle that proves nothing."""
    root, ca, hp, hd, hc, mid, _ = tree
    s = load_config(hc.config)
    signer = preflight.load_identity(s, TrustStore.from_files(list(s.tls.trust_anchors)), SYSTEM)
    raw = make.make(make.find(_mailbox(hc.dir), mid), signer, SYSTEM, [])
    body = epb.EvidenceBody.FromString(epb.EvidenceBundle.FromString(raw).body)
    body.statuses[0].content_key = bytes(32)
    data = body.SerializeToString()
    lie = tmp_path / "lie.bin"
    lie.write_bytes(epb.EvidenceBundle(body=data, signature=signer.sign(data)).SerializeToString())
    capsys.readouterr()
    assert main(["verify-evidence", str(lie), "--ca", str(ca / "ca.pem")]) == 3
    assert "status[0]: the disclosed content key does not open its sealed payload" in capsys.readouterr().out


def test_a_bundle_with_one_byte_changed_is_refused_by_the_command(bundle, tmp_path, capsys):
    path, ca, _ = bundle
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    changed = tmp_path / "changed.bin"
    changed.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["verify-evidence", str(changed), "--ca", str(ca)]) == 3
    assert capsys.readouterr().out.startswith("REFUSED: ")


def test_a_bundle_checked_against_another_ca_is_refused(bundle, tmp_path, capsys):
    path, _, _ = bundle
    other = nodes.make_ca(tmp_path)
    capsys.readouterr()
    assert main(["verify-evidence", str(path), "--ca", str(other / "ca.pem")]) == 3
    assert "REFUSED: the bundle's signer certificate" in capsys.readouterr().out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_one_byte_changed_is_refused(bundle, data):
    path, ca, _ = bundle
    original = path.read_bytes()
    anchors = certs.load_certs(ca)
    at = data.draw(st.integers(0, len(original) - 1), label="position")
    flip = data.draw(st.integers(1, 255), label="xor")
    changed = bytearray(original)
    changed[at] ^= flip
    with pytest.raises(check.Refused):
        check.check(bytes(changed), anchors)


@pytest.mark.parametrize("revoked_at, refused", [(None, False), (dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc), True)])
def test_the_crl_travels_in_the_bundle_and_judges_each_signature_at_its_time(tree, tmp_path, capsys, revoked_at,
                                                                              refused):
    """C's certificate revoked after it signed: the bundle still proves what it signed, and says so. Revoked
    before (a compromised key): what it signed proves nothing."""
    root, ca, hp, hd, hc, mid, _ = tree
    ca_copy = tmp_path / "ca"
    shutil.copytree(ca, ca_copy)
    revocation.revoke(ca_copy, hc.dir / "keys" / "node.pem", "key_compromise", now=revoked_at)
    crl = revocation.make_crl(ca_copy)
    cfg = yaml.safe_load(hp.config.read_text())
    cfg["tls"]["crl"] = str(crl)
    config = hp.dir / f"node-crl-{refused}.yaml"  # beside P's own: the same data directory
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    out = tmp_path / "with-crl.bin"
    assert main(["evidence", mid, "--config", str(config), "--out", str(out)]) == 0
    capsys.readouterr()
    status = main(["verify-evidence", str(out), "--ca", str(ca / "ca.pem")])
    text = capsys.readouterr().out
    if refused:
        assert status == 3 and f"the certificate of {C}" in text and "revoked at 2020-01-01" in text, text
    else:
        assert status == 0, text
        assert "crl:      number 1 from" in text and f"note:     the certificate of {C} was revoked at" in text, text


def test_a_clean_stop_signs_a_last_checkpoint_and_hands_it_to_the_parent(tmp_path):
    """With checkpoints an hour apart, what a node did since its last one is still covered once it stops."""
    ca = nodes.make_ca(tmp_path)
    slow = {**FAST_REGISTRY, "audit": {"checkpoint_every": "1h"}}
    addresses = {code: f"127.0.0.1:{nodes.free_port()}" for code in (P, D)}
    hp = nodes.prepare_node(tmp_path, ca, NodeSpec(P, "Tỉnh P", extra=slow), addresses)
    hd = nodes.prepare_node(tmp_path, ca, NodeSpec(D, "Huyện D", peers={P: P}, parent=P, extra=slow), addresses)
    try:
        nodes.start(hp)
        nodes.wait_healthy([hp], TIMEOUT)
        nodes.start_registered(hp, hd, TIMEOUT)
        d = hd.client()
        with EventWaiter(d, inbox=False) as ev:
            mid = d.send(pb.Document(subject="trước khi dừng"), [P]).envelopes[0].message_id
            ev.wait(lambda _: mid in ev.ids("delivered"), TIMEOUT)
        assert nodes.terminate(hd) == 0
        db = Database(_mailbox(hd.dir))
        try:
            seq, head = audit.head(db)
            latest = audit.latest_checkpoint(db)
        finally:
            db.close()
        assert latest is not None and (latest["seq"], latest["head"]) == (seq, head)
        assert latest["parent_ms"] is not None  # the parent took it before the node went
    finally:
        for h in (hd, hp):
            nodes.terminate(h)
