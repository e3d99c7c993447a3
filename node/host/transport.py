"""An agency's transport on a host: co-hosted agencies in process, every other peer over gRPC.

The client certificate presented is always the calling agency's, so each agency has its own gRPC
channels (the cache is keyed by calling agency, then peer address and code). A call to an agency
this host serves never leaves the process: it runs that agency's servicers behind its interceptors
(node/transport/in_process.py), with the caller's certificate, the same handshake checks, custody,
signatures and receipts as over the network.
"""
from __future__ import annotations

import threading
from typing import Sequence

from google.protobuf.message import Message

from ..logs import serving_as
from ..transport.in_process import InProcessTransport, LocalServer
from ..transport.interface import Method, Peer, PeerTransport, TransportError


class HostNetwork:
    """The agencies this host serves, by code (a LocalNetwork finds them by address; here they all
    share the host's address)."""

    def __init__(self) -> None:
        self._servers: dict[str, LocalServer] = {}
        self._lock = threading.Lock()

    def attach(self, code: str, server: LocalServer) -> None:
        with self._lock:
            self._servers[code] = server

    def detach(self, code: str) -> None:
        with self._lock:
            self._servers.pop(code, None)

    def serving(self, peer: Peer) -> LocalServer | None:
        with self._lock:
            return self._servers.get(peer.code)


class HostedTransport(PeerTransport):
    def __init__(self, local: InProcessTransport, remote: PeerTransport, network: HostNetwork) -> None:
        self.local, self.remote, self.network = local, remote, network

    def call(self, peer: Peer, method: Method, request: Message, timeout: float) -> Message:
        if self.network.serving(peer) is not None:
            with serving_as(peer.code):  # the called agency's servicers run in this thread: its lines are its own
                return self.local.call(peer, method, request, timeout)
        return self.remote.call(peer, method, request, timeout)

    def call_each(self, peers: Sequence[Peer], method: Method, request: Message,
                  timeout: float) -> dict[str, Message | TransportError]:
        here, there = [], []
        for p in peers:  # one look-up each: the network's lock is every agency's
            (here if self.network.serving(p) is not None else there).append(p)
        answers = self.local.call_each(here, method, request, timeout) if here else {}
        if there:
            answers.update(self.remote.call_each(there, method, request, timeout))
        return answers

    def deliver(self, peer: Peer, envelopes: list[bytes]):
        if self.network.serving(peer) is not None:
            with serving_as(peer.code):
                return self.local.deliver(peer, envelopes)
        return self.remote.deliver(peer, envelopes)

    def expect(self, code: str) -> None:
        self.remote.expect(code)

    def reload(self, tls) -> None:
        self.local.reload(tls)
        self.remote.reload(tls)

    def close(self) -> None:
        self.remote.close()
