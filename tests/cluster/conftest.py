"""A real cluster of node processes (configs/topologies/small.yaml) for the tests of one module."""
from __future__ import annotations

import pytest

from node.harness import topology
from node.harness.cluster import Cluster

# fast retries so a crashed hop is retried within a second of coming back
FAST_RETRY = {"retry": {"first_delay": "100ms", "multiplier": 2.0, "max_delay": "1s"},
              "registry": {"heartbeat": "1s", "stale_after": "5s"}}  # and heartbeats that carry statistics up quickly


@pytest.fixture(scope="module")
def small():
    return topology.load("small")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, small):
    """All 15 nodes of `small` up, healthy and registered; every node stopped at the end (exit 0)."""
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.up(small, extra=FAST_RETRY, quiet=True)
    except BaseException:
        c.kill_all()
        raise
    yield c
    statuses = c.close()
    assert statuses == {code: 0 for code in c.nodes}, f"nodes did not stop cleanly: {statuses}"
