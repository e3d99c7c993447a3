"""node/descriptors.py: the soft open-files limit is raised at start, and the servers' connection caps
leave the reserve for the store under any limit a node may be given."""
from __future__ import annotations

import resource
import subprocess
import sys

import pytest

from node import descriptors


def test_the_soft_limit_is_raised_to_the_hard_one():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    hard = min(hard, 4096)  # the child may lower its hard limit, not raise it
    code = ("import resource; from node import descriptors; "
            f"resource.setrlimit(resource.RLIMIT_NOFILE, (256, {hard})); "
            "print(descriptors.raise_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(hard), str(hard)]


@pytest.mark.parametrize("limit", [256, 320, 1024, 4096, 65536, 1 << 20])
def test_the_caps_leave_the_reserve(limit):
    b = descriptors.budget(limit)
    assert b.peer + b.api + b.http + descriptors.RESERVED <= limit
    assert b.peer >= 40 and b.api >= 8 and b.http >= 8
    assert b.peer <= descriptors.MAX_PEER_CONNECTIONS and b.http <= descriptors.MAX_API_CONNECTIONS


def test_the_server_options_bound_handshakes_and_connections():
    options = dict(descriptors.server_options(80))
    assert options["grpc.max_allowed_incoming_connections"] == 80
    assert options["grpc.server_handshake_timeout_ms"] <= 10_000  # gRPC's own default is 120 s
