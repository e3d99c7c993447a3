"""An agency's servicers by method path, for a host's server to dispatch a call to."""
from __future__ import annotations

from typing import Sequence

import grpc


class ServiceTable:
    """What the generated `add_*Servicer_to_server` functions register on, as on a grpc.Server; `handler`
    gives one method's handler behind the given interceptors (the first outermost), as grpc's server does."""

    def __init__(self) -> None:
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}

    def add_generic_rpc_handlers(self, handlers) -> None:
        pass  # the same handlers come through add_registered_method_handlers

    def add_registered_method_handlers(self, service: str, handlers: dict) -> None:
        for name, handler in handlers.items():
            self._handlers[f"/{service}/{name}"] = handler

    def handler(self, details, interceptors: Sequence[grpc.ServerInterceptor] = ()) -> grpc.RpcMethodHandler | None:
        continuation = lambda d: self._handlers.get(d.method)  # noqa: E731
        for interceptor in reversed(interceptors):
            continuation = (lambda i, nxt: lambda d: i.intercept_service(nxt, d))(interceptor, continuation)
        return continuation(details)
