"""grpc.health.v1 status that means something, and says why.

SERVING only while every check passes (as X-Road's health check reports OK only when keys,
certificate status and database are all fine):

- the database answers;
- the node's certificate in use is still trusted and in its validity period;
- extra checks the node adds (runtime.Node): the key and certificate files on disk are what a
  restart would load (mode, key matching the certificate, chain, dates: preflight.load_identity),
  and the parent link works (registration or heartbeats not failing for longer than
  registry.unhealthy_after).

Peer checks (the CRL is fresh: past its next update plus tls.crl_grace it is not) turn only the
peer surface NOT_SERVING: "" (what peers probe) and lienthong.v1.Exchange. The Mailbox stays
SERVING, since the agency's software may still write: its mail waits in the queue.

The first failing check's reason is logged once when the status changes (a warning naming
what to fix), and once more when it is SERVING again; never on every check.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable

from grpc_health.v1 import health, health_pb2

from .envelope import Signer
from .errors import Reason, Rejected
from .interceptor import refuse
from .limits import ALL, InFlight
from .identity.trust import TrustStore
from .store.database import Database

log = logging.getLogger(__name__)

SERVICES = ("", "lienthong.v1.Exchange", "lienthong.v1.Mailbox")
PEER_SERVICES = ("", "lienthong.v1.Exchange")  # what a peer asks about

Check = Callable[[], "str | None"]  # a problem, or None
WATCHES = 8  # health Watch streams open at once on one servicer, API and peer ports together (each holds a worker)


class HealthServicer(health.HealthServicer):
    """grpcio's health servicer in its blocking form, the only one every node and host uses.

    In the non-blocking form (grpcio's default) `set` holds the servicer's lock while it waits for each
    watcher's message to be sent, and the server's one event thread runs a cancelled Watch's close callback,
    which takes that lock: a watcher that hangs up as a status change reaches it (a probe that stops at the
    answer it waited for, or a hostile peer doing it on purpose) deadlocks the server's event thread and
    every later `set` — the node's health job, the host's reload — for good. Blocking, a Watch holds a
    worker while it streams (bounded: node.limits.Places) and `set` only queues the message.

    Overriding Watch gives this class a function of its own: grpcio sets the flag on the class's function,
    so a plain HealthServicer() made anywhere in the process would flip every instance back.

    At most `watches` streams at once over every port it serves (peers are held to fewer before they reach
    it: node.peer_gate), so local clients watching health cannot take every API worker either.

    A status is set only when it changes: grpcio's `set` sends every watcher a message on each call, and the
    node's health job and the host's set every service on every tick (a Watch stream heard the same SERVING
    every 5 s; a host of a thousand agencies made a thousand sets a tick)."""

    def __init__(self, watches: int = WATCHES) -> None:
        super().__init__(experimental_non_blocking=False)
        self.streams = InFlight(watches)
        self._said: dict[str, int] = {}  # each service's status as last set

    def set(self, service: str, status) -> None:
        # under grpcio's own lock (an RLock): its enter_graceful_shutdown calls set while holding it, so a lock
        # of ours taken first here would be taken in the other order there
        with self._lock:
            if self._said.get(service) == status:
                return
            self._said[service] = status
            super().set(service, status)

    def Watch(self, request, context, send_response_callback=None):  # noqa: N802 - grpc's name
        if not self.streams.enter(ALL):
            refuse(context, Rejected(Reason.TOO_MANY_STREAMS, f"{self.streams.limit} health Watch streams are "
                                     "open here; ask with Check", metadata={"limit": str(self.streams.limit)}))
        if not context.add_callback(lambda: self.streams.leave(ALL)):
            self.streams.leave(ALL)  # in process: nothing holds a worker, nothing to count
        return super().Watch(request, context, send_response_callback)


class HealthMonitor:
    def __init__(self, db: Database, signer: Signer, trust: TrustStore, checks: Iterable[Check] = (),
                 peer_checks: Iterable[Check] = ()) -> None:
        self.db, self.signer, self.trust = db, signer, trust
        self.checks = list(checks)
        self.peer_checks = list(peer_checks)
        self.servicer = HealthServicer()
        self.problem: str | None = "not started"
        self.on_change: Callable[[str | None], None] = lambda problem: None  # after the status changed

    def _node_problem(self) -> str | None:
        if not self.db.healthy():
            return f"database {self.db.path} does not answer (disk full, removed, or damaged?): check it, then restart"
        try:
            self.trust.identify(self.signer.cert_der)
        except Rejected as r:
            return f"certificate in use: {r.public_text} (renew it: `lienthong renew`, then SIGHUP)"
        return _first(self.checks)

    def check(self) -> bool:
        node_problem = self._node_problem()
        problem = node_problem or _first(self.peer_checks)
        if problem != self.problem:
            if problem:
                log.warning("health: NOT_SERVING: %s", problem)
            else:
                log.info("health: SERVING" + (f" (was: {self.problem})" if self.problem != "not started" else ""))
        changed, self.problem = problem != self.problem, problem
        serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
        for name in SERVICES:
            down = problem if name in PEER_SERVICES else node_problem
            self.servicer.set(name, not_serving if down else serving)  # sent to watchers only when changed
        if changed:
            self.on_change(problem)
        return problem is None

    def shutdown(self) -> None:
        self.servicer.enter_graceful_shutdown()


def _first(checks: list[Check]) -> str | None:
    for check in checks:
        try:
            problem = check()
        except Exception as e:  # a check that breaks is itself a problem, named
            problem = f"health check failed: {e.__class__.__name__}: {e}"
        if problem:
            return problem
    return None
