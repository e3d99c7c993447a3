"""A host process serving a province and two of its communes, beside a standalone commune in a process of
its own: mail between co-hosted agencies and across processes, each answered with its automatic 01; the
certificate an outside peer sees is the one of the agency it names; a commune added by a file and SIGHUP
registers and receives mail with no restart; one removed stops taking mail (NOT_HOSTED) and keeps its data."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import grpc
import pytest

from node.errors import Reason
from node.grpc_errors import reason_of
from node.harness import hosts, nodes
from node.harness.inproc import FAST_REGISTRY
from node.harness.nodes import NodeSpec
from node.harness.waiting import EventWaiter, wait_for_statuses
from node.identity import certs
from node.pb import envelope_pb2 as pb
from node.pb import registry_pb2 as rpb
from node.transport.grpc_peers import CALLED, TlsMaterial, open_channel
from node.transport.interface import LOOKUP
from node.transport.peer_check import peer_certificate

P, C1, C2, C3, X = "000.00.01.H53", "000.01.01.H53", "000.02.01.H53", "000.04.01.H53", "000.03.01.H53"
TIMEOUT = 60.0


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "node", *args], capture_output=True, text=True, timeout=60)


def registered(waiter: EventWaiter, code: str) -> None:
    waiter.wait(lambda evs: any(e.type == "registered" and e.peer == code for e in evs), TIMEOUT)


def served_code(xh, listen: str, code: str) -> str:
    from node.identity.trust import TrustStore
    der = peer_certificate(xh.dir / "keys" / "node.pem", xh.dir / "keys" / "node.key", listen,
                           name=certs.tls_name(code))
    return TrustStore.from_files([xh.dir / "keys" / "ca.pem"]).identify(der).code


@pytest.fixture()
def world(tmp_path):
    ca = nodes.make_ca(tmp_path)
    listen = f"127.0.0.1:{nodes.free_port()}"
    addresses = {P: listen, C1: listen, C2: listen, C3: listen, X: f"127.0.0.1:{nodes.free_port()}"}
    specs = [NodeSpec(P, "UBND tỉnh", extra={"node": {"root": True}})] + [
        NodeSpec(c, f"UBND xã {c}", peers={P: P}, parent=P) for c in (C1, C2, C3)]
    h = hosts.prepare_host(tmp_path, ca, "host", specs, addresses, listen=listen, extra=FAST_REGISTRY,
                           write=[P, C1, C2])
    xh = nodes.prepare_node(tmp_path, ca, NodeSpec(X, "UBND xã ngoài", peers={P: P}, parent=P, extra=FAST_REGISTRY),
                            addresses)
    try:
        hosts.start(h)
        nodes.wait_healthy([h.agencies[c] for c in (P, C1, C2)], timeout=TIMEOUT)
        nodes.start_registered(h.agencies[P], xh, timeout=TIMEOUT)
        yield h, xh
    finally:
        statuses = [nodes.terminate(xh), nodes.terminate(h.agencies[P])]
        print(nodes.tail(h.agencies[P], 60))
    assert statuses == [0, 0]


def test_host_process(world):
    h, xh = world
    c1 = h.agencies[C1].client()
    # co-hosted (C1 -> P -> C2, in process) and to another process (C1 -> P -> X), each with its 01 back
    response = c1.send(pb.Document(subject="Công văn liên thông"), [C2, X])
    wait_for_statuses(c1, response.doc_id, {C2: ["01"], X: ["01"]}, timeout=TIMEOUT)
    by = {e.recipient: e.message_id for e in response.envelopes}
    assert h.agencies[C2].client().fetch(by[C2]).signature_verified
    assert xh.client().fetch(by[X]).signature_verified
    # and back from the outside: X -> P -> C1
    back = xh.client().send(pb.Document(subject="Trả lời"), [C1])
    wait_for_statuses(xh.client(), back.doc_id, {C1: ["01"]}, timeout=TIMEOUT)
    # one peer port, each agency's own certificate, chosen by the name the caller asks for
    assert {c: served_code(xh, h.listen, c) for c in (P, C1, C2)} == {P: P, C1: C1, C2: C2}

    # a commune added: its file, then SIGHUP; it registers with its (co-hosted) parent and takes mail
    with EventWaiter(h.agencies[P].client(), inbox=False, sent=False, registry=True) as reg:
        hosts.write_agency(h, h.agencies[C3])
        os.kill(h.process.pid, signal.SIGHUP)
        registered(reg, C3)
    assert served_code(xh, h.listen, C3) == C3
    sent = xh.client().send(pb.Document(subject="Gửi xã mới"), [C3])
    wait_for_statuses(xh.client(), sent.doc_id, {C3: ["01"]}, timeout=TIMEOUT)
    assert h.agencies[C3].client().inbox_all()
    # the CLI on the host file picks the agency with --agency (its data directory and token)
    inbox = cli("inbox", "--config", str(h.config), "--agency", C3, "--json")
    assert sent.envelopes[0].message_id in inbox.stdout
    unnamed = cli("inbox", "--config", str(h.config))
    assert unnamed.returncode == 2 and "--agency" in unnamed.stderr

    # a commune removed: its certificate is no longer served, a call naming it is NOT_HOSTED, its data stays
    h.agency_file(C2).unlink()
    os.kill(h.process.pid, signal.SIGHUP)
    hosts.wait_agency_status(h, C2, "SERVICE_UNKNOWN", timeout=TIMEOUT)
    ident = TlsMaterial((xh.dir / "keys" / "node.key").read_bytes(), (xh.dir / "keys" / "node.pem").read_bytes(),
                        (xh.dir / "keys" / "ca.pem").read_bytes())
    channel = open_channel(ident, P, h.listen, 1 << 20)  # the handshake pinned to P: the host is reached
    try:
        lookup = channel.unary_unary(LOOKUP.path, request_serializer=rpb.LookupRequest.SerializeToString,
                                     response_deserializer=rpb.LookupResponse.FromString)
        with pytest.raises(grpc.RpcError) as refused:
            lookup(rpb.LookupRequest(code=C2), metadata=((CALLED, C2),), timeout=10)
        assert reason_of(refused.value) == Reason.NOT_HOSTED.wire
    finally:
        channel.close()
    assert served_code(xh, h.listen, C2) != C2
    assert nodes.mailbox_path(h.agencies[C2].dir).exists()
    with pytest.raises(grpc.RpcError) as e:
        h.agencies[C2].client().inbox_all()
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED  # its tokens went with it
