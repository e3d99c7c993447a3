"""`scripts/demo`: two real nodes over mutual TLS; one document from A to B, shown verified with its receipt."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from ..pb import envelope_pb2 as pb
from . import nodes
from .waiting import EventWaiter

A = nodes.NodeSpec("000.00.01.H53", "Văn phòng UBND tỉnh Tây Ninh")
B = nodes.NodeSpec("000.00.35.H53", "UBND huyện Hòa Thành")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="lienthong-demo-") as tmp:
        a, b = nodes.pair(Path(tmp), A, B)
        print(f"CA, keys and configs in {tmp}")
        for h in (a, b):
            nodes.start(h)
        try:
            nodes.wait_healthy([a, b])
            print(f"node {a.code} up: peers {a.listen} (mTLS), local API {a.api}")
            print(f"node {b.code} up: peers {b.listen} (mTLS), local API {b.api}")
            doc = pb.Document(
                document_id="000.00.01.H53,2026/11/21,123/UBND-VP",
                subject="V/v triển khai trục liên thông văn bản",
                content="Đề nghị các đơn vị triển khai gửi nhận văn bản điện tử qua trục liên thông.",
                attachments=[pb.Attachment(name="cong-van-123.pdf", content_type="application/pdf",
                                           data=b"%PDF-1.4 demo attachment\n")],
            )
            doc.code.code_number, doc.code.code_notation = "123", "UBND-VP"
            with EventWaiter(a.client(), inbox=False) as waiter:
                sent = a.client().send(doc, [b.code]).envelopes[0]
                print(f"\nsent {sent.message_id} from {a.code} to {b.code}")
                waiter.wait(lambda evs: sent.message_id in {e.message_id for e in evs}, timeout=30)
            [entry] = [e for e in a.client().sent_all() if e.message_id == sent.message_id]
            inbox = b.client()
            got = inbox.fetch(sent.message_id)
            d = got.payload.document
            print(f"\n{b.code} received: \"{d.subject}\" ({d.document_id})")
            print(f"  signature verified: {got.signature_verified}  signer: {got.signer_subject}")
            print("  path: " + " -> ".join(h.code for h in got.path))
            print(f"  attachment: {d.attachments[0].name}, {len(d.attachments[0].data)} bytes")
            r = pb.ReceiptBody.FromString(entry.receipt.body)
            print(f"\n{a.code} holds a signed receipt: receiver {r.receiver}, message {r.message_id},"
                  f" envelope sha256 {r.envelope_sha256.hex()[:16]}…, state {entry.state}")
            inbox.ack(sent.message_id)
        finally:
            for h in (a, b):
                status = nodes.terminate(h)
                print(f"stopped {h.code} (exit {status})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
