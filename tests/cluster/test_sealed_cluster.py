"""Sealed for the recipient, on fifteen real node processes (configs/topologies/small.yaml).

A commune in one province sends a commune in the other a document with a random marker in its body
and in an attachment; the recipient answers with a status whose description carries another marker;
a relay purges a second sealed document and writes its sender a non-delivery notice. Afterwards no
node but the two ends holds any marker anywhere in its directory (SQLite file, -wal, logs, any
file), in clear or base64; every node's log is free of it; the recipient fetched exactly what was
sent and the sender exactly the status, both sealed on the wire.

Shares the package's cluster (see conftest.py): only its own messages are looked at, and the hop it
holds for the purge is released before the test ends.
"""
from __future__ import annotations

import base64
import secrets
from pathlib import Path

from node import codes
from node.client import AdminCalls
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb

SENDER = "000.21.35.H53"     # a commune of Tây Ninh ...
RECIPIENT = "000.22.32.H29"  # ... to a commune of Hòa Bình: five relays between them
SENDER_DISTRICT, SENDER_PROVINCE = "000.00.35.H53", "000.00.00.H53"


def spellings(marker: bytes) -> list[bytes]:
    """The marker as it could be written anywhere: raw, and base64 at each of the three alignments."""
    out = [marker]
    for pad in (b"", b"\0", b"\0\0"):
        text = base64.b64encode(pad + marker)
        skip = {0: 0, 1: 2, 2: 3}[len(pad)]   # leading characters that also encode the padding
        out.append(text[skip:len(text) - 4])  # trailing group may mix in what follows
    return out


def holders(directory: Path, markers: list[bytes]) -> list[str]:
    """Every file under `directory` holding any spelling of any marker."""
    found = []
    for f in sorted(p for p in directory.rglob("*") if p.is_file()):
        data = f.read_bytes()
        for m in markers:
            for s in spellings(m):
                if s in data:
                    found.append(f"{f.relative_to(directory)} holds {s[:24]!r}")
    return found


def seal_of(envelope_raw: bytes) -> int:
    return pb.Header.FromString(pb.Envelope.FromString(envelope_raw).header).seal


def test_sealed_document_status_and_notice_are_unreadable_on_every_relay(cluster):
    doc_marker = f"MẬT-{secrets.token_hex(12)}"
    file_marker = secrets.token_bytes(8).hex().encode() + b"-file-secret"
    status_marker = f"status-{secrets.token_hex(12)}"
    notice_doc_marker = f"purged-{secrets.token_hex(12)}"
    markers = [m.encode() if isinstance(m, str) else m for m in (doc_marker, file_marker, status_marker,
                                                                 notice_doc_marker)]
    attachment = b"%PDF-1.4\n" + file_marker + secrets.token_bytes(3000) + file_marker
    document = pb.Document(subject=f"Công văn {doc_marker}", content=f"Nội dung: {doc_marker}",
                           document_id=f"{SENDER},2026/11/29,{secrets.token_hex(3)}/UBND",
                           attachments=[pb.Attachment(name="mat.pdf", content_type="application/pdf",
                                                      data=attachment)])
    sender, recipient = cluster.client(SENDER), cluster.client(RECIPIENT)

    # the document, sealed, five relays to the other province
    with EventWaiter(recipient, sent=False) as arrivals:
        [sent] = sender.send(document, [RECIPIENT]).envelopes
        arrivals.wait(lambda evs: sent.message_id in {e.message_id for e in evs if e.type == "arrived"}, 60)
    got = recipient.fetch(sent.message_id)
    assert got.signature_verified and seal_of(got.envelope) == pb.SEALED_P256_AES256GCM
    expected = pb.Document()
    expected.CopyFrom(document)
    expected.from_organ.CopyFrom(got.payload.document.from_organ)  # an empty From is filled in by the sender's node
    assert expected.from_organ.organ_id == SENDER
    assert got.payload.document == expected                        # exactly what was sent, attachment included
    assert got.payload.document.attachments[0].data == attachment
    assert doc_marker.encode() not in got.envelope and file_marker not in got.envelope  # sealed as it travelled
    route = codes.Hierarchy().route(SENDER, RECIPIENT)
    assert [h.code for h in got.path] == route and len(route) == 7

    # a status back, sealed to the sender
    with EventWaiter(sender, sent=False) as back:
        recipient.set_status(sent.message_id, "03", description=f"Đã giao: {status_marker}")
        back.wait(lambda evs: any(e.type == "arrived" and e.ref_message_id == sent.message_id
                                  and e.status_code == "03" for e in evs), 60)
    statuses = [e for e in sender.inbox_all() if e.kind == pb.STATUS and e.ref_message_id == sent.message_id]
    got03 = [sender.fetch(e.message_id) for e in statuses]
    got03 = [g for g in got03 if g.payload.status.status_code == "03"]
    assert len(got03) == 1 and got03[0].payload.status.description == f"Đã giao: {status_marker}"
    assert seal_of(got03[0].envelope) == pb.SEALED_P256_AES256GCM
    assert all(seal_of(sender.fetch(e.message_id).envelope) == pb.SEALED_P256_AES256GCM for e in statuses)  # 01 too

    # a relay purges a sealed document: its notice goes back sealed to the sender
    district = AdminCalls(cluster.client(SENDER_DISTRICT))
    district.hold(SENDER_PROVINCE)
    try:
        with EventWaiter(sender) as ev:
            [held] = sender.send(pb.Document(subject=notice_doc_marker, content=notice_doc_marker),
                                 [RECIPIENT]).envelopes
            ev.wait(lambda evs: held.message_id in {e.message_id for e in evs if e.type == "delivered"}, 60)
            district.purge(held.message_id, "withdrawn by the operator for the test")
            ev.wait(lambda evs: any(e.type == "arrived" and e.ref_message_id == held.message_id for e in evs), 60)
    finally:
        district.release(SENDER_PROVINCE)
    [notice] = [e for e in sender.inbox_all() if e.kind == pb.NOTICE and e.ref_message_id == held.message_id]
    shown = sender.fetch(notice.message_id)
    assert seal_of(shown.envelope) == pb.SEALED_P256_AES256GCM
    assert shown.payload.notice.reason == "PURGED" and notice_doc_marker not in shown.payload.notice.detail

    # nothing of it on any other node, in any file; in nobody's log
    problems = []
    for code, info in cluster.map().items():
        node_dir = Path(info["dir"])
        if code in (SENDER, RECIPIENT):
            problems += [f"{code}: {p}" for p in holders(node_dir, markers) if p.startswith("node.log")]
        else:
            problems += [f"{code}: {p}" for p in holders(node_dir, markers)]
    assert not problems, "plaintext outside the two ends:\n" + "\n".join(problems)
