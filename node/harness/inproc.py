"""A tree of nodes inside one process (real gRPC, mutual TLS, SQLite files), for fast tests.

Each node is a full `Node`; only the OS process is shared. Nodes start parents first,
and the call returns once every parent has seen each of its children register. Given a
`LocalNetwork`, the nodes call each other in process (node/transport/in_process.py) and
bind no peer port; their local APIs are still served over gRPC.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from ..client import MailboxClient
from ..config import load_config
from ..runtime import Node
from ..transport.in_process import LocalNetwork
from . import nodes
from .nodes import NodeSpec
from .waiting import EventWaiter

# heartbeats (and, in the audit tests, checkpoints) several times a second: the parent's rate for them too
FAST_REGISTRY = {"registry": {"heartbeat": "200ms", "stale_after": "1s"},
                 "limits": {"registry_updates_per_second": 20}}


class Tree(dict):
    """code -> (Node, NodeHandle)."""

    def node(self, code: str) -> Node:
        return self[code][0]

    def client(self, code: str):
        return self[code][1].client()

    def stop(self) -> None:
        for node, _ in self.values():
            node.stop(grace=1)


def start_tree(root: Path, parents: dict[str, str | None], extra: dict | None = None, timeout: float = 30,
               per_node: dict[str, dict] | None = None, network: LocalNetwork | None = None) -> Tree:
    """`parents`: code -> parent code (None for the top), in an order where parents come first;
    `per_node`: extra config sections for particular nodes (e.g. parents_of); `network`: peers reach each
    other through it, in process, instead of over gRPC."""
    ca = nodes.make_ca(root)
    addresses = {c: f"127.0.0.1:{nodes.free_port()}" for c in parents}
    tree, watchers = Tree(), {}
    try:
        for code, parent in parents.items():
            spec = nodes.NodeSpec(code, f"agency {code}", peers={parent: parent} if parent else {}, parent=parent,
                                  extra={**FAST_REGISTRY, **(extra or {}), **(per_node or {}).get(code, {})})
            handle = nodes.prepare_node(root, ca, spec, addresses)
            node = Node(load_config(handle.config), network=network)
            node.start()
            tree[code] = (node, handle)
            if code in parents.values():
                watchers[code] = EventWaiter(handle.client(), inbox=False, sent=False, registry=True)
        for parent, waiter in watchers.items():
            expected = {c for c, p in parents.items() if p == parent}
            waiter.wait(lambda evs: {e.peer for e in evs if e.type == "registered"} >= expected, timeout=timeout)
            waiter.close()
    except BaseException:
        for w in watchers.values():
            w.close()
        tree.stop()
        raise
    return tree


@contextlib.contextmanager
def running_pair(root: Path, a: NodeSpec, b: NodeSpec, timeout: float = 10.0
                 ) -> Iterator[tuple[Node, Node, nodes.NodeHandle, nodes.NodeHandle]]:
    """Two in-process nodes that know each other, B started first so A's first delivery finds it up;
    both stopped on exit. Yields (node A, node B, handle A, handle B)."""
    ha, hb = nodes.pair(root, a, b)
    started: list[Node] = []
    try:
        for h in (hb, ha):
            node = Node(load_config(h.config))
            node.start()
            started.append(node)
        nodes.wait_healthy([ha, hb], timeout=timeout)
        yield started[1], started[0], ha, hb
    finally:
        for node in reversed(started):
            node.stop(grace=1.0)


@contextlib.contextmanager
def pair_clients(root: Path, a: NodeSpec, b: NodeSpec, timeout: float = 10.0) -> Iterator[list[MailboxClient]]:
    """`running_pair`, for tests that only talk to the two local APIs: yields [client of A, client of B]."""
    with running_pair(root, a, b, timeout) as (_, _, ha, hb):
        clients = [ha.client(timeout), hb.client(timeout)]
        try:
            yield clients
        finally:
            for c in clients:
                c.close()
