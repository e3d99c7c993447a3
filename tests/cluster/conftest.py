"""Real clusters of node processes (configs/topologies/small.yaml) for the tests in this directory.

Starting the 15 nodes takes about ten seconds, so there are two fixtures:

- `cluster`: one cluster shared by every module here that only sends its own documents between
  nodes and checks what became of them (test_delivery, test_lifecycle_cluster, test_directory_cluster,
  test_not_registered, test_sealed_cluster), run twice: its agencies on hosts (docs/hosting.md), one
  host per agency, then one host per province with the national root on its own (co-hosted
  agencies exchange in process). It starts with
  the first test that asks for it and stops after the last test of this package. A module that
  uses it must leave every node running with its configuration, wait for what it sent to arrive,
  and assert only on its own messages: its own message ids, or the rows a node added while the
  test ran, and counters as differences from before it sent anything.
- `own_cluster`: a cluster of the module's own, for a module that kills, restarts or reconfigures
  nodes (test_crash), so what it breaks never reaches the shared one.

Either way every node is stopped at the end and must exit 0. Today's one node.yaml per process is what
`own_cluster`, test_harness, test_revocation_cluster and test_parked run.
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.harness import topology
from node.harness.cluster import Cluster
from node.harness.topology import Topology

# fast retries so a crashed hop is retried within a second of coming back
FAST_RETRY = {"retry": {"first_delay": "100ms", "multiplier": 2.0, "max_delay": "1s"},
              "registry": {"heartbeat": "1s", "stale_after": "5s"}}  # and heartbeats that carry statistics up quickly


@contextlib.contextmanager
def running(directory: Path, topo: Topology, **up) -> Iterator[Cluster]:
    """All nodes of `topo` up, healthy and registered; every node stopped at the end (exit 0). `up`: more
    arguments of Cluster.up (extra defaults to FAST_RETRY)."""
    c = Cluster(directory)
    try:
        c.up(topo, **{"extra": FAST_RETRY, "quiet": True, **up})
    except BaseException:
        c.kill_all()
        raise
    try:
        yield c
    except BaseException:
        c.kill_all()  # a failed test must not leave its nodes running
        raise
    statuses = c.close()
    assert statuses == {code: 0 for code in c.nodes}, f"nodes did not stop cleanly: {statuses}"


@pytest.fixture(scope="session")
def small() -> Topology:
    return topology.load("small")


@pytest.fixture(scope="package", params=["per-agency", "per-province"])
def cluster(request, tmp_path_factory, small) -> Iterator[Cluster]:
    """The cluster the read-only modules of this package share (see the module docstring), on hosts placed
    by each rule of topology.PLACEMENTS in turn."""
    with running(tmp_path_factory.mktemp(f"shared-cluster-{request.param}"), small, hosts=request.param) as c:
        assert len(c.hosts) == {"per-agency": len(small), "per-province": 3}[request.param]
        yield c


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory, small) -> Iterator[Cluster]:
    """A cluster for one module that kills, restarts or reconfigures its nodes."""
    with running(tmp_path_factory.mktemp("own-cluster"), small) as c:
        yield c


def sent_entry(client, mid: str, until, timeout: float = 60.0):
    """Paced reads of a sender's sent list until `until(entry)` holds for `mid`'s entry (no event says that an
    envelope is kept home: it is what the sent list shows, `reason` naming why)."""
    deadline, pace = time.monotonic() + timeout, threading.Event()
    while True:
        [entry] = [s for s in client.sent_all() if s.message_id == mid]
        if until(entry):
            return entry
        assert time.monotonic() < deadline, f"{mid}: {entry} after {timeout}s"
        pace.wait(0.1)
