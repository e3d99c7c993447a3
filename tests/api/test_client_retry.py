"""The client library makes a call refused as busy again (node/client_retry.py): bounded, with backoff and
jitter drawn from an injected rng and slept through an injected sleep, so no test waits. A real gRPC server
on port 0 answers the refusals with the node's own encoding (node.interceptor.refuse)."""
from __future__ import annotations

import random
from concurrent import futures

import grpc
import pytest

from node.client import MailboxClient
from node.client_retry import BusyRetry
from node.errors import Reason, Rejected
from node.grpc_errors import reason_of
from node.interceptor import refuse
from node.pb import mailbox_pb2 as mpb
from node.pb import mailbox_pb2_grpc as mgrpc


class Refusing(mgrpc.MailboxServicer):
    """WhoAmI refused with `reason` the first `times` calls, then answered."""

    def __init__(self, reason: Reason, times: int) -> None:
        self.reason, self.times, self.calls = reason, times, 0

    def WhoAmI(self, request, context):
        self.calls += 1
        if self.calls <= self.times:
            refuse(context, Rejected(self.reason, "busy"))
        return mpb.WhoAmIResponse(code="000.01.01.H53")


@pytest.fixture()
def serve():
    servers = []

    def start(servicer) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        mgrpc.add_MailboxServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"
    yield start
    for s in servers:
        s.stop(0)


def _client(address: str, slept: list, retries: int = 4) -> MailboxClient:
    return MailboxClient(address, "t" * 32, timeout=10,
                         retry=BusyRetry(retries=retries, first_delay=0.1, max_delay=0.4, sleep=slept.append,
                                         rng=random.Random(7)))


@pytest.mark.parametrize("reason", ["AGENCY_BUSY", "PEER_BUSY", "REGISTRY_BUSY", "CHILD_BUSY", "RATE_LIMITED"])
def test_a_busy_refusal_is_retried_with_jittered_backoff(serve, reason):
    servicer = Refusing(Reason[reason], times=3)
    slept: list[float] = []
    assert _client(serve(servicer), slept).whoami().code == "000.01.01.H53"
    assert servicer.calls == 4 and len(slept) == 3
    bounds = [0.1, 0.2, 0.4]  # doubling, capped at max_delay
    assert all(0 <= s < b for s, b in zip(slept, bounds)), slept
    assert len(set(slept)) == 3  # drawn, not fixed: programs refused together do not come back together


def test_retries_are_bounded_then_the_refusal_is_the_callers(serve):
    servicer = Refusing(Reason.AGENCY_BUSY, times=100)
    slept: list[float] = []
    with pytest.raises(grpc.RpcError) as e:
        _client(serve(servicer), slept, retries=4).whoami()
    assert reason_of(e.value) == "AGENCY_BUSY" and servicer.calls == 5 and len(slept) == 4
    assert sum(slept) < 0.1 + 0.2 + 0.4 + 0.4


def test_other_refusals_are_not_retried(serve):
    servicer = Refusing(Reason.UNAUTHENTICATED, times=1)
    slept: list[float] = []
    with pytest.raises(grpc.RpcError) as e:
        _client(serve(servicer), slept).whoami()
    assert reason_of(e.value) == "UNAUTHENTICATED" and servicer.calls == 1 and slept == []
