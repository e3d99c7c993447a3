"""The Stats gRPC servicer on the local API (the token interceptor guards it like Mailbox)."""
from __future__ import annotations

import grpc

from ..clock import Clock
from ..pb import stats_pb2 as spb
from ..pb import stats_pb2_grpc as sgrpc
from ..store.database import Database
from .core import collect

SERVICE_NAME = spb.DESCRIPTOR.services_by_name["Stats"].full_name  # lienthong.v1.Stats, for reflection


class StatsService(sgrpc.StatsServicer):
    def __init__(self, db: Database, code: str, name: str, clock: Clock) -> None:
        self.db, self.code, self.name, self.clock = db, code, name, clock

    def Get(self, request: spb.StatsRequest, context: grpc.ServicerContext) -> spb.StatsResponse:
        return collect(self.db, self.code, self.name, self.clock, request.subtree)


def add_to_server(server: grpc.Server, db: Database, code: str, name: str, clock: Clock) -> str:
    """Serve Stats on `server`; returns the service's full name (for reflection)."""
    sgrpc.add_StatsServicer_to_server(StatsService(db, code, name, clock), server)
    return SERVICE_NAME
