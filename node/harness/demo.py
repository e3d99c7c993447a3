"""`scripts/demo`: a 15-node tree of real processes; one document from a commune in Tây Ninh
to a commune in Hòa Bình, relayed hop by hop, shown as the recipient verified it."""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time

from .. import codes
from ..pb import envelope_pb2 as pb
from . import topology
from .cluster import Cluster
from .waiting import EventWaiter

SENDER = "000.23.38.H53"      # UBND xã Bình Thạnh, Tây Ninh
RECIPIENT = "000.21.31.H29"   # UBND xã Hòa Sơn, Hòa Bình


def _time(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%H:%M:%S.%f")[:-3]


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def _progress(text: str) -> None:
    """One line while the tree starts (a few seconds to a minute on a small machine)."""
    print(f"  … {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(
        prog="scripts/demo",
        description="Start the 15-node `small` tree (configs/topologies/small.yaml) on this machine, each node its "
                    "own process with its own key, certificate and SQLite mailbox, in a temporary folder; send one "
                    f"document from {SENDER} (a commune in Tây Ninh) to {RECIPIENT} (a commune in Hòa Bình); show "
                    "the path the recipient verified, its first hop's signed receipt and the recipient's 01; stop "
                    "every node and remove the folder. Exit 0 when every node stopped cleanly.").parse_args(argv)
    topo = topology.load("small")
    with tempfile.TemporaryDirectory(prefix="lienthong-demo-") as tmp:
        cluster = Cluster(tmp)
        t0 = time.monotonic()
        print(f"starting '{topo.name}': {len(topo)} nodes (national axis, 2 provinces, 4 districts, 8 communes),"
              " each its own process with its own key, certificate and SQLite mailbox", flush=True)
        try:
            cluster.up(topo, quiet=True, progress=_progress)
            print(f"all {len(topo)} nodes healthy and registered with their parents in {time.monotonic() - t0:.1f}s"
                  " (CA, keys and configs in a temporary folder, removed when the demo ends)")
            sender, recipient = cluster.nodes[SENDER], cluster.nodes[RECIPIENT]
            doc = pb.Document(
                document_id=f"{SENDER},2026/11/21,45/UBND-VP",
                subject="V/v phối hợp tổ chức giao lưu văn hóa giữa hai xã",
                content="UBND xã Bình Thạnh đề nghị UBND xã Hòa Sơn phối hợp tổ chức chương trình giao lưu.",
                attachments=[pb.Attachment(name="ke-hoach-45.pdf", content_type="application/pdf",
                                           data=b"%PDF-1.4 demo attachment\n" * 40)],
            )
            doc.code.code_number, doc.code.code_notation = "45", "UBND-VP"
            with EventWaiter(cluster.client(SENDER)) as at_sender, \
                    EventWaiter(cluster.client(RECIPIENT), sent=False) as at_recipient:
                sent = cluster.client(SENDER).send(doc, [RECIPIENT]).envelopes[0]
                mid = sent.message_id
                print(f"\n{sender.name} ({SENDER}) sent {mid}\n  to {recipient.name} ({RECIPIENT})")
                at_sender.wait(lambda evs: any(e.message_id == mid and e.type == "delivered" for e in evs), 60)
                at_recipient.wait(lambda evs: any(e.message_id == mid and e.type == "arrived" for e in evs), 60)
                # the recipient's node answers with status 01 when it stores the document: delivered to the recipient
                events = at_sender.wait(lambda evs: any(e.ref_message_id == mid and e.type == "arrived"
                                                        and e.status_code == "01" for e in evs), 60)
                [arrived] = [e for e in events if e.ref_message_id == mid and e.status_code == "01"]

            got = cluster.client(RECIPIENT).fetch(mid)
            d = got.payload.document
            print(f"\n{RECIPIENT} received \"{d.subject}\" ({d.document_id})")
            print(f"  attachment {d.attachments[0].name}, {len(d.attachments[0].data)} bytes")
            print(f"  sender signature verified: {_yes(got.signature_verified)}  ({got.signer_subject})")
            sealed = pb.Header.FromString(pb.Envelope.FromString(got.envelope).header).seal == pb.SEALED_P256_AES256GCM
            print(f"  sealed for {RECIPIENT} (ECDH P-256 + AES-256-GCM): {_yes(sealed)}"
                  + ("; the relays below held only ciphertext (docs/sealing.md)" if sealed else ""))
            print("  path as the recipient verified it (sender's signature, each relay's signed trace entry):")
            for hop in got.path:
                name = cluster.nodes[hop.code].name if hop.code in cluster.nodes else ""
                print(f"    {_time(hop.time_ms)}  {hop.code:<14} {'verified' if hop.verified else 'NOT VERIFIED'}  {name}")
            hops = [h.code for h in got.path]
            print(f"  the route the codes imply (up to {codes.lca(SENDER, RECIPIENT)}, then down):"
                  f" {_yes(hops == codes.route(SENDER, RECIPIENT))}")

            [entry] = [e for e in cluster.client(SENDER).sent_all() if e.message_id == mid]
            r = pb.ReceiptBody.FromString(entry.receipt.body)
            print(f"\n{SENDER}: handed to its first hop {r.receiver} at {_time(entry.delivered_ms)}, which signed a "
                  f"receipt\n  (message {entry.receipt.message_id}, envelope sha256 "
                  f"{entry.receipt.envelope_sha256.hex()[:16]}…)")
            print(f"  delivered to the recipient: {RECIPIENT}'s node stored it and answered with status 01 "
                  f"(arrived), received at {_time(arrived.time_ms)}")
            cluster.client(RECIPIENT).ack(mid)
        finally:
            statuses = cluster.close()
        codes_ = set(statuses.values())
        print(f"\nstopped {len(statuses)} nodes: exit status {', '.join(map(str, sorted(codes_, key=str)))}")
    return 0 if codes_ == {0} else 1


if __name__ == "__main__":
    sys.exit(main())
