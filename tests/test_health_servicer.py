"""The health servicer every node and host serves (node.health.HealthServicer), on a real gRPC server."""
from __future__ import annotations

import contextlib
import threading
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from node.errors import Reason
from node.grpc_errors import reason_of
from node.health import WATCHES, HealthServicer

SERVING, UNKNOWN = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


@contextlib.contextmanager
def served(servicer: HealthServicer, workers: int = 8):
    """A real gRPC server of `servicer` and a stub to it. The server is stopped without waiting: after a
    deadlock it would never finish stopping."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield health_pb2_grpc.HealthStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
    finally:
        server.stop(0)


def test_watchers_hanging_up_as_a_status_reaches_them_never_block_set():
    """grpcio's default (non-blocking) servicer deadlocks here at the first round: `set` holds its lock while
    waiting for a send that the server's event thread, stuck on that lock in a cancelled Watch's close
    callback, never completes. Seen as a host whose health job and API hung after removing an agency, while
    a probe stopped watching at SERVICE_UNKNOWN; a hostile peer could do it on purpose."""
    health.HealthServicer()  # a default one made elsewhere in the process must not change ours
    servicer = HealthServicer(watches=1000)  # the cap has its own test
    with served(servicer) as stub:
        for i in range(30):
            name = f"agency-{i}"
            servicer.set(name, SERVING)
            streams = [stub.Watch(health_pb2.HealthCheckRequest(service=name)) for _ in range(4)]
            for s in streams:
                assert next(s).status == SERVING

            def hang_up_on_unknown(stream):
                for answer in stream:
                    if answer.status == UNKNOWN:
                        stream.cancel()
                        return

            readers = [threading.Thread(target=hang_up_on_unknown, args=(s,)) for s in streams]
            for t in readers:
                t.start()
            setter = threading.Thread(target=servicer.set, args=(name, UNKNOWN), daemon=True)
            setter.start()
            setter.join(30)  # returns at once unless deadlocked (then for good: this bound only ends the test)
            assert not setter.is_alive(), f"set() deadlocked at round {i}"
            for t in readers:
                t.join()


def test_health_watch_streams_are_capped_with_their_own_reason():
    """Blocking, each stream holds a server worker: a local client (or peers, before node.peer_gate's own
    caps) opening Watch after Watch would take every worker of the API port."""
    servicer = HealthServicer()
    servicer.set("", SERVING)
    with served(servicer, workers=WATCHES + 4) as stub:
        held = [stub.Watch(health_pb2.HealthCheckRequest(service="")) for _ in range(WATCHES)]
        assert all(next(s).status == SERVING for s in held)
        with pytest.raises(grpc.RpcError) as refused:
            next(stub.Watch(health_pb2.HealthCheckRequest(service="")))
        assert reason_of(refused.value) == Reason.TOO_MANY_STREAMS.value
        assert stub.Check(health_pb2.HealthCheckRequest(service="")).status == SERVING  # Check still answers
        for s in held:
            s.cancel()


def test_a_status_is_set_again_only_when_it_changes(tmp_path, pki, clock, monkeypatch):
    """grpcio's `set` sends every watcher a message each time it is called: the node's health job ran it for
    every service on every check, so each Watch stream heard the same SERVING every 5 s. Now only a change
    is set (and so sent)."""
    from node.health import HealthMonitor, SERVICES
    from node.store.database import Database

    db = Database(tmp_path / "health.sqlite3")
    problem: list[str | None] = [None]
    monitor = HealthMonitor(db, pki.signer("000.00.01.H53"), pki.trust(clock), checks=[lambda: problem[0]])
    said: list[tuple[str, int]] = []  # what reached grpcio's set, which sends every watcher a message
    real = health.HealthServicer.set
    monkeypatch.setattr(health.HealthServicer, "set",
                        lambda self, name, status: (said.append((name, status)), real(self, name, status)))
    try:
        assert monitor.check() and said == [(name, SERVING) for name in SERVICES]
        assert monitor.check() and monitor.check()
        assert len(said) == len(SERVICES)  # the same status: nobody is told again
        problem[0] = "the disk is full"
        assert not monitor.check()
        assert said[len(SERVICES):] == [(name, health_pb2.HealthCheckResponse.NOT_SERVING) for name in SERVICES]
        assert not monitor.check() and len(said) == 2 * len(SERVICES)
        problem[0] = None
        assert monitor.check() and said[2 * len(SERVICES):] == [(name, SERVING) for name in SERVICES]
    finally:
        db.close()


def test_a_graceful_shutdown_still_turns_every_service_not_serving_and_holds():
    """grpcio's enter_graceful_shutdown sets each service through our `set` while holding its own lock: ours
    skips only what did not change, under that same lock, so shutdown goes through and nothing is set after."""
    servicer = HealthServicer()
    for name in ("", "lienthong.v1.Exchange"):
        servicer.set(name, SERVING)
    done = threading.Thread(target=servicer.enter_graceful_shutdown)
    done.start()
    done.join(10)
    assert not done.is_alive()
    servicer.set("", SERVING)
    with served(servicer) as stub:
        for name in ("", "lienthong.v1.Exchange"):
            assert stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=10).status == \
                health_pb2.HealthCheckResponse.NOT_SERVING
