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
from .errors import Rejected
from .identity.trust import TrustStore
from .store.database import Database

log = logging.getLogger(__name__)

SERVICES = ("", "lienthong.v1.Exchange", "lienthong.v1.Mailbox")
PEER_SERVICES = ("", "lienthong.v1.Exchange")  # what a peer asks about

Check = Callable[[], "str | None"]  # a problem, or None


class HealthMonitor:
    def __init__(self, db: Database, signer: Signer, trust: TrustStore, checks: Iterable[Check] = (),
                 peer_checks: Iterable[Check] = ()) -> None:
        self.db, self.signer, self.trust = db, signer, trust
        self.checks = list(checks)
        self.peer_checks = list(peer_checks)
        self.servicer = health.HealthServicer()
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
            self.servicer.set(name, not_serving if down else serving)
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
