"""The peer gate keeps delivery served whatever the registry is doing: registry calls get a share of the
peer workers (REGISTRY_BUSY past it) and each peer a few of that share (PEER_BUSY), refused at once.

A real gRPC server on port 0 with three workers, whose Registry.Lookup waits until released (a lookup
passed down to a child that answers slowly); Exchange.Deliver answers at once."""
from __future__ import annotations

import threading
from concurrent import futures

import grpc
import pytest

from node.exchange.service import PeerIdentity
from node.grpc_errors import reason_of
from node.interceptor import ErrorInterceptor
from node.limits import Limits
from node.pb import envelope_pb2 as pb
from node.pb import exchange_pb2 as xpb
from node.pb import exchange_pb2_grpc as xgrpc
from node.pb import registry_pb2 as rpb
from node.pb import registry_pb2_grpc as rgrpc
from node.peer_gate import PeerGate

WAIT = 10.0


class Slow(rgrpc.RegistryServicer):
    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.released = threading.Event()

    def Lookup(self, request, context):
        self.entered.release()
        self.released.wait(WAIT)
        return rpb.LookupResponse()


class Quick(xgrpc.ExchangeServicer):
    def Deliver(self, request, context):
        return pb.Receipt(message_id="taken")


@pytest.fixture
def gate_server():
    started = []

    def start(limits: Limits):
        slow = Slow()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=3),
                             interceptors=[PeerGate(PeerIdentity(None, insecure=True), limits=limits),
                                           ErrorInterceptor()])
        rgrpc.add_RegistryServicer_to_server(slow, server)
        xgrpc.add_ExchangeServicer_to_server(Quick(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        started.append((server, channel, slow))
        return rgrpc.RegistryStub(channel), xgrpc.ExchangeStub(channel), slow

    yield start
    for server, channel, slow in started:
        slow.released.set()
        channel.close()
        server.stop(1).wait(WAIT)


def refusal(stub) -> str | None:
    try:
        stub.Lookup(rpb.LookupRequest(code="x"), timeout=WAIT)
    except grpc.RpcError as e:
        return reason_of(e)
    return None


def held(registry, slow, n: int) -> list:
    calls = [registry.Lookup.future(rpb.LookupRequest(code="x"), timeout=WAIT) for _ in range(n)]
    for _ in range(n):
        assert slow.entered.acquire(timeout=WAIT)
    return calls


def test_registry_calls_past_their_share_are_refused_and_delivery_keeps_its_workers(gate_server):
    registry, exchange, slow = gate_server(Limits(registry_share=2, registry_calls_per_peer=5))
    calls = held(registry, slow, 2)
    assert refusal(registry) == "REGISTRY_BUSY"  # answered at once: no worker waits for a share
    # two of the three workers wait on the registry; the third still takes mail
    assert exchange.Deliver(xpb.DeliverRequest(envelope=b""), timeout=WAIT).message_id == "taken"
    slow.released.set()
    assert all(c.result() is not None for c in calls)
    slow.released.clear()
    calls = held(registry, slow, 2)  # the places were given back
    slow.released.set()
    [c.result() for c in calls]


def test_one_peer_holds_at_most_its_few_registry_calls(gate_server):
    registry, exchange, slow = gate_server(Limits(registry_share=2, registry_calls_per_peer=1))
    calls = held(registry, slow, 1)
    assert refusal(registry) == "PEER_BUSY"
    slow.released.set()
    [c.result() for c in calls]


def test_health_watch_streams_have_a_few_places_of_their_own():
    """grpcio's health Watch holds a worker while the caller listens: a peer gets HEALTH_WATCHES_PER_PEER of
    them (TOO_MANY_STREAMS past that, at once), a place given back as its stream ends; Deliver still answered."""
    from grpc_health.v1 import health, health_pb2
    from grpc_health.v1 import health_pb2_grpc as hgrpc

    from node.peer_gate import HEALTH_WATCHES_PER_PEER
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=HEALTH_WATCHES_PER_PEER + 1),
                         interceptors=[PeerGate(PeerIdentity(None, insecure=True)), ErrorInterceptor()])
    hgrpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    xgrpc.add_ExchangeServicer_to_server(Quick(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        stub = hgrpc.HealthStub(channel)
        held = [stub.Watch(health_pb2.HealthCheckRequest(), timeout=WAIT) for _ in range(HEALTH_WATCHES_PER_PEER)]
        for stream in held:
            next(stream)  # its first answer: it holds a worker now
        with pytest.raises(grpc.RpcError) as e:
            next(stub.Watch(health_pb2.HealthCheckRequest(), timeout=WAIT))
        assert reason_of(e.value) == "TOO_MANY_STREAMS"
        assert xgrpc.ExchangeStub(channel).Deliver(xpb.DeliverRequest(), timeout=WAIT).message_id == "taken"
        held.pop().cancel()
        for _ in range(100):  # the place comes back once the server has seen the cancel
            again = stub.Watch(health_pb2.HealthCheckRequest(), timeout=WAIT)
            try:
                next(again)
                break
            except grpc.RpcError as refused:
                assert reason_of(refused) == "TOO_MANY_STREAMS"
                threading.Event().wait(0.05)
        else:
            pytest.fail("the cancelled stream's place never came back")
        held.append(again)
        for stream in held:
            stream.cancel()
    finally:
        channel.close()
        server.stop(0)
