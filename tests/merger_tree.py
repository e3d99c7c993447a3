"""A province P and three of its communes in one process: X is merged into Z, S writes to them (the retire and
takeover tests' tree), and a call's refusal as the test reads it."""
from __future__ import annotations

import grpc
import pytest

from node.harness.inproc import start_tree

P = "000.00.00.H53"
X, Z, S = "000.00.31.H53", "000.00.33.H53", "000.00.34.H53"


@pytest.fixture
def tree(tmp_path):
    t = start_tree(tmp_path, {P: None, X: P, Z: P, S: P})
    try:
        yield t
    finally:
        t.stop()


def refused(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value
