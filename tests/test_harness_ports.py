"""The ports the harness allocates for nodes to bind later (node.harness.nodes.free_port)."""
from __future__ import annotations

import socket

from node.harness import nodes


def test_ports_are_picked_outside_the_ephemeral_range_and_are_free():
    """A port from the kernel's ephemeral range (what binding port 0 gives) could become the local end of an
    outgoing connection before the node binds it: demo and cluster starts failed 'address in use'."""
    low, high = nodes._ephemeral_range()
    picked = {nodes.free_port() for _ in range(50)}
    assert all(not low <= p <= high for p in picked), sorted(picked)
    assert len(picked) == 50  # never one port twice in a process (random picks repeated: a cluster start failed)
    with socket.socket() as s:
        s.bind(("127.0.0.1", picked.pop()))
