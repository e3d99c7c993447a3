"""grpc.health.v1 status that means something: SERVING only while the database answers
and the node's certificate is still trusted and in its validity period (as X-Road's
health check reports OK only when keys, certificate status and database are all fine)."""
from __future__ import annotations

import logging

from grpc_health.v1 import health, health_pb2

from .envelope import Signer
from .errors import Rejected
from .identity.trust import TrustStore
from .store.database import Database

log = logging.getLogger(__name__)

SERVICES = ("", "lienthong.v1.Exchange", "lienthong.v1.Mailbox")


class HealthMonitor:
    def __init__(self, db: Database, signer: Signer, trust: TrustStore) -> None:
        self.db, self.signer, self.trust = db, signer, trust
        self.servicer = health.HealthServicer()
        self.problem: str | None = "not started"

    def check(self) -> bool:
        problem = None
        if not self.db.healthy():
            problem = "database does not answer"
        else:
            try:
                self.trust.identify(self.signer.cert_der)
            except Rejected as r:
                problem = f"own certificate: {r.public_text}"
        if problem != self.problem:
            (log.warning if problem else log.info)("health: %s", problem or "SERVING")
        self.problem = problem
        status = health_pb2.HealthCheckResponse.NOT_SERVING if problem else health_pb2.HealthCheckResponse.SERVING
        for name in SERVICES:
            self.servicer.set(name, status)
        return problem is None

    def shutdown(self) -> None:
        self.servicer.enter_graceful_shutdown()
