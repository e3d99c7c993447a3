"""File descriptors (node/descriptors.py): idle TCP connections to the peer port, from an attacker
with no certificate, against a node running under a tight open-files limit.

Under systemd's default 1,024, ~1,015 such connections (gRPC kept each for its 120 s handshake
timeout) stopped new mutual-TLS connections, the local API and SQLite. Here the victim B runs with
RLIMIT_NOFILE 320 (soft and hard) and the attacker opens 600: B keeps its descriptors for the
store and its API, its local API answers at once, and an honest delivery from A arrives (once the
handshake timeout has closed the idle connections, if the peer server's share is full).
"""
from __future__ import annotations

import os
import socket
import time

from node.descriptors import HANDSHAKE_TIMEOUT_MS, RESERVED
from node.harness import nodes
from node.harness.nodes import NodeSpec
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb

A, B = "000.00.01.H53", "000.00.02.H53"
OPEN_FILES = 320
IDLE = 600
RETRY = {"retry": {"first_delay": "100ms", "multiplier": 2.0, "max_delay": "1s"}}


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_idle_connections_to_the_peer_port_leave_room_for_mtls_the_local_api_and_the_store(tmp_path):
    ha, hb = nodes.pair(tmp_path, NodeSpec(A, "Sở A", extra=RETRY), NodeSpec(B, "Sở B", extra=RETRY))
    nodes.start(hb, open_files=OPEN_FILES)
    nodes.start(ha)
    idle: list[socket.socket] = []
    try:
        nodes.wait_healthy([ha, hb])
        host, port = hb.listen.rsplit(":", 1)
        for _ in range(IDLE):  # no TLS, not a byte: each would hold a descriptor for gRPC's handshake timeout
            idle.append(socket.create_connection((host, int(port)), timeout=10))
        held = open_descriptors(hb.pid)
        assert held <= OPEN_FILES - RESERVED // 2, f"B holds {held} descriptors of {OPEN_FILES}"
        b = hb.client(timeout=10)
        assert b.inbox() is not None and b.healthy()  # the local API, a new connection: answered at once
        with EventWaiter(b, sent=False) as arrivals:
            began = time.monotonic()
            sent = ha.client().send(pb.Document(subject="Công văn qua hàng đợi"), [B]).envelopes[0].message_id
            arrivals.wait(lambda evs: any(e.type == "arrived" and e.message_id == sent for e in evs),
                          timeout=HANDSHAKE_TIMEOUT_MS / 1000 + 50)
            took = time.monotonic() - began
        assert sent in {e.message_id for e in b.inbox_all()}  # stored: SQLite had its descriptors
        print(f"\nB held {held} descriptors with {IDLE} idle connections open; the delivery took {took:.1f}s")
    finally:
        for s in idle:
            s.close()
        statuses = [nodes.terminate(h) for h in (ha, hb)]
    assert statuses == [0, 0], [nodes.tail(h) for h in (ha, hb)]
