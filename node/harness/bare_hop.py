"""The bare signed hop: the floor a document's cost is measured against (`scripts/bench` runs it first).

What every exchange must do at least, and nothing else: A sends gRPC unary batches of signed
10 KB envelopes (made by node.envelope.seal, the one way an envelope is made) over mutual TLS;
B checks each envelope's payload digest and verifies its one ECDSA signature, writes the batch to
SQLite in WAL mode with synchronous=FULL in one transaction (one fsync), signs one receipt over
the batch and answers it; A verifies that receipt. Same batch size and batches in flight as the
node's hop (message.batch_size, exchange.hop.WINDOW). No routing, custody rules, audit, statuses,
sealing, dedup index or events: the ratio exchange/bare is what all of that costs.

B runs in its own process (`python -m node.harness.bare_hop --serve DIR`), as a node does; it
prints its port once bound, which is what A waits for.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
from cryptography import x509

from .. import envelope
from ..config import MessageSettings
from ..exchange.hop import WINDOW
from ..identity import certs, keys
from ..pb import envelope_pb2 as pb
from ..pb import exchange_pb2 as xpb
from ..store.bare_inbox import BareInbox

A, B = "000.00.01.H53", "000.00.35.H53"
METHOD = "/lienthong.bench.BareHop/Deliver"
BATCH = MessageSettings().batch_size


def identities(root: Path) -> dict[str, Path]:
    """A test CA and the two agencies' keys and certificates under `root`."""
    ca_dir = root / "ca"
    certs.init_ca(ca_dir)
    for code, name in ((A, "Sở A"), (B, "Huyện B")):
        certs.init_node(root / code, code, name, ca_dir)
    return {"ca": ca_dir / "ca.pem", A: root / A, B: root / B}


class Receiver:
    """B: verify each envelope, one transaction and one fsync per batch, one signed receipt per batch."""

    def __init__(self, directory: Path) -> None:
        self.signer = envelope.Signer.from_files(directory / "node.key", directory / "node.pem")
        self.inbox = BareInbox(directory / "bare.sqlite3")

    def deliver(self, request_bytes: bytes, context) -> bytes:
        request = xpb.DeliverBatchRequest.FromString(request_bytes)
        rows, digests = [], []
        for raw in request.envelopes:
            env = pb.Envelope.FromString(raw)
            header = pb.Header.FromString(env.header)
            if hashlib.sha256(env.payload).digest() != header.payload_sha256:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "digest")
            public_key = x509.load_der_x509_certificate(env.sender_cert).public_key()
            if not keys.verify(public_key, env.signature, env.header):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "signature")
            rows.append((header.message_id, header.sender, env.header, env.payload, int(time.time() * 1000)))
            digests.append(hashlib.sha256(env.header).digest())
        self.inbox.store_batch(rows)
        return self.signer.sign(hashlib.sha256(b"".join(digests)).digest())


def serve(directory: Path, anchors: Path) -> None:
    receiver = Receiver(directory)
    handler = grpc.method_handlers_generic_handler("lienthong.bench.BareHop", {
        "Deliver": grpc.unary_unary_rpc_method_handler(receiver.deliver)})
    limit = 64 << 20
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                         options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)])
    server.add_generic_rpc_handlers((handler,))
    creds = grpc.ssl_server_credentials([((directory / "node.key").read_bytes(), (directory / "node.pem").read_bytes())],
                                        root_certificates=anchors.read_bytes(), require_client_auth=True)
    port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    print(port, flush=True)
    sys.stdin.read()  # serve until A closes our stdin
    server.stop(None)


def envelopes(directory: Path, n: int, size: int) -> list[bytes]:
    """n signed envelopes from A to B, each a 10 KB document, made as the node makes them."""
    signer = envelope.Signer.from_files(directory / "node.key", directory / "node.pem")
    out = []
    for i in range(n):
        payload = pb.Payload(document=pb.Document(
            subject=f"Bench {i}", document_id=f"{A},2026/12/07,{i}/BARE",
            attachments=[pb.Attachment(name="a.bin", content_type="application/octet-stream", data=bytes(size))]))
        out.append(envelope.seal(signer, B, payload, lifetime_s=86400)[1])
    return out


def batch(chunk: list[bytes]) -> tuple[bytes, bytes]:
    """The request for one batch, and the digest B's receipt must sign."""
    headers = (pb.Envelope.FromString(e).header for e in chunk)
    digest = hashlib.sha256(b"".join(hashlib.sha256(h).digest() for h in headers)).digest()
    return xpb.DeliverBatchRequest(envelopes=chunk).SerializeToString(), digest


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(root: Path, n: int = 10_000, size: int = 10_000) -> dict:
    """Time A sending n envelopes to B (a process of its own) in batches, WINDOW of them in flight."""
    paths = identities(root)
    proc = subprocess.Popen([sys.executable, "-m", "node.harness.bare_hop", "--serve", str(paths[B]), str(paths["ca"])],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        a_dir = paths[A]
        creds = grpc.ssl_channel_credentials(root_certificates=paths["ca"].read_bytes(),
                                             private_key=(a_dir / "node.key").read_bytes(),
                                             certificate_chain=(a_dir / "node.pem").read_bytes())
        channel = grpc.secure_channel(f"127.0.0.1:{port}", creds, options=[
            ("grpc.ssl_target_name_override", certs.tls_name(B)),
            ("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)])
        grpc.channel_ready_future(channel).result(timeout=30)
        call = channel.unary_unary(METHOD)
        b_key = x509.load_pem_x509_certificate((paths[B] / "node.pem").read_bytes()).public_key()
        made = envelopes(a_dir, n, size)
        batches = [batch(made[i:i + BATCH]) for i in range(0, n, BATCH)]
        queue = list(range(len(batches)))
        lock = threading.Lock()
        failures: list[str] = []

        def sender() -> None:
            while True:
                with lock:
                    if not queue:
                        return
                    k = queue.pop(0)
                body, digest = batches[k]
                receipt = call(body, timeout=60)
                if not keys.verify(b_key, receipt, digest):
                    failures.append(f"batch {k}: receipt does not verify")

        cpu0, t0 = (time.process_time(), cpu_s(proc.pid)), time.perf_counter()
        workers = [threading.Thread(target=sender) for _ in range(WINDOW)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - t0
        cpu1 = (time.process_time(), cpu_s(proc.pid))
        channel.close()
        if failures:
            raise RuntimeError("; ".join(failures[:3]))
        busy = {side: round((y - x) / elapsed, 2) for side, x, y in zip(("node_a", "node_b"), cpu0, cpu1)}
        docs_per_s = round(n / elapsed, 1)
        return {"documents": n, "doc_bytes": size, "batch": BATCH, "in_flight": WINDOW, "seconds": round(elapsed, 3),
                "docs_per_s": docs_per_s, "cpu_cores_busy": busy,
                "cpu_ms_per_doc": {side: round(v * 1000 / docs_per_s, 3) for side, v in busy.items()}}
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=30)


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--serve":
    serve(Path(sys.argv[2]), Path(sys.argv[3]))
