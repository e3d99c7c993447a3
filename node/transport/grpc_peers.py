"""The gRPC transport between nodes: mutual TLS with node certificates, one channel per peer.

The client pins the peer's agency code through the certificate's DNS SAN
(ssl_target_name_override, which is also the SNI name sent, so a host serving several
agencies answers with the called one's certificate), so reaching an address proves nothing
by itself: the peer must hold a certificate for the code we meant to reach. Every call also
names the code called in its metadata (`lienthong-to`), which such a host dispatches on. Before a delivery, the
certificate the peer answers with is also checked against our CRL (peer_check.py).
The peer server's side (its credentials) is here too: `server_credentials`.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

import grpc
from google.protobuf.message import Message

from ..identity import certs
from .interface import DELIVER_TIMEOUT_S, Method, Peer, PeerTransport, TransportError, failure_of

log = logging.getLogger(__name__)

CALLED = "lienthong-to"  # call metadata: the code of the agency called (a host serving several finds it by this)
RETIRE_AFTER_S = DELIVER_TIMEOUT_S + 5  # a channel replaced by a reload is closed once every call on it is past its deadline


@dataclass(frozen=True)
class TlsMaterial:
    key_pem: bytes
    cert_pem: bytes
    anchors_pem: bytes
    insecure: bool = False


def grpc_options(max_message: int) -> list[tuple[str, int]]:
    limit = 2 * max_message + (1 << 20)  # room for a batch at the size limit plus framing
    return [("grpc.max_send_message_length", limit), ("grpc.max_receive_message_length", limit)]


def server_options(max_message: int) -> list[tuple[str, int]]:
    """Options of every gRPC server a node or host runs. gRPC sets SO_REUSEPORT by default on Linux, so a
    second process could bind a port a running node holds and silently take half its connections (a
    second node started on the same `listen`, or two harness clusters picking one port); without it the
    second bind fails and start-up names the key."""
    return grpc_options(max_message) + [("grpc.so_reuseport", 0)]


def server_credentials(tls: TlsMaterial | Callable[[], TlsMaterial]) -> grpc.ServerCredentials:
    """Mutual TLS for the peer server. Given a function, every new handshake asks it for the current
    material (SIGHUP reload): connections already up keep theirs, new ones get the new key, certificate
    and anchors."""
    if not callable(tls):
        return grpc.ssl_server_credentials(
            [(tls.key_pem, tls.cert_pem)], root_certificates=tls.anchors_pem, require_client_auth=True
        )
    current = tls

    def config(m: TlsMaterial):
        return grpc.ssl_server_certificate_configuration([(m.key_pem, m.cert_pem)], root_certificates=m.anchors_pem)

    served = [current()]

    def fetch():
        m = current()
        if m is served[0]:
            return None  # unchanged
        served[0] = m
        return config(m)

    return grpc.dynamic_ssl_server_credentials(config(served[0]), fetch, require_client_authentication=True)


# The dispatcher keeps its own, persisted backoff per hop; gRPC's reconnect backoff (up to 120 s) would
# only hide a peer that came back, so a peer channel retries its connection at most 2 s apart.
RECONNECT_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 250), ("grpc.min_reconnect_backoff_ms", 250),
                     ("grpc.max_reconnect_backoff_ms", 2000)]
RETURN_WAIT_S = 5.0  # how long the first delivery to a peer that just answered waits for the connection


def dial_target(address: str) -> str:
    """A peer's host:port as a gRPC target that names a host: gRPC reads `unix:…`, `vsock:…` and the like
    as other schemes, so an address is always handed to the DNS resolver (which takes IP literals too)."""
    return address if address.startswith("dns:///") else f"dns:///{address}"


def open_channel(tls: TlsMaterial, code: str, address: str, max_message: int) -> grpc.Channel:
    options = grpc_options(max_message) + RECONNECT_OPTIONS
    address = dial_target(address)
    if tls.insecure:
        return grpc.insecure_channel(address, options=options)
    creds = grpc.ssl_channel_credentials(
        root_certificates=tls.anchors_pem, private_key=tls.key_pem, certificate_chain=tls.cert_pem
    )
    return grpc.secure_channel(address, creds, options=options + [("grpc.ssl_target_name_override", certs.tls_name(code))])


class GrpcTransport(PeerTransport):
    """PeerTransport over gRPC: one channel per (peer code, address), shared by every call there."""

    def __init__(self, tls: TlsMaterial, max_message: int,
                 check_peer: Callable[[str, str], None] | None = None) -> None:
        self._tls = tls
        self._max = max_message
        self.check_peer = check_peer  # (code, address): TransportError if its certificate is not to be trusted
        self._calls: dict[tuple[str, str, str], grpc.UnaryUnaryMultiCallable] = {}
        self._channels: dict[tuple[str, str], grpc.Channel] = {}
        self._lock = threading.Lock()
        self._returned: set[str] = set()
        self._retired: list[grpc.Channel] = []  # replaced by a reload, closed once their calls are done

    def expect(self, code: str) -> None:
        """`code` just answered us: the next delivery waits for the connection (its channel may still be
        in its reconnect backoff) instead of failing at once."""
        with self._lock:
            self._returned.add(code)

    def _channel(self, code: str, address: str) -> grpc.Channel:
        with self._lock:
            ch = self._channels.get((code, address))
            if ch is None:
                ch = self._channels[(code, address)] = open_channel(self._tls, code, address, self._max)
            return ch

    def _callable(self, peer: Peer, method: Method) -> grpc.UnaryUnaryMultiCallable:
        key = (peer.code, peer.address, method.path)
        with self._lock:
            call = self._calls.get(key)
        if call is None:
            call = self._channel(peer.code, peer.address).unary_unary(
                method.path, request_serializer=_serialize,
                response_deserializer=method.response.FromString)
            with self._lock:
                self._calls[key] = call
        return call

    def call(self, peer: Peer, method: Method, request: Message, timeout: float) -> Message:
        try:
            return self._callable(peer, method)(request, timeout=timeout, metadata=((CALLED, peer.code),))
        except grpc.RpcError as e:
            raise failure_of(e) from None

    def call_each(self, peers: Sequence[Peer], method: Method, request: Message,
                  timeout: float) -> dict[str, Message | TransportError]:
        answers: dict[str, Message | TransportError] = {}
        calls = []
        for peer in peers:
            try:
                calls.append((peer.code, self._callable(peer, method).future(
                    request, timeout=timeout, metadata=((CALLED, peer.code),))))
            except Exception as e:  # noqa: BLE001 - one bad endpoint must not stop the others
                answers[peer.code] = TransportError(f"{peer.code} at {peer.address}: {e}")
        for code, call in calls:
            try:
                answers[code] = call.result()
            except grpc.RpcError as e:
                answers[code] = failure_of(e)
        return answers

    def deliver(self, peer: Peer, envelopes: list[bytes]):
        with self._lock:
            returned = peer.code in self._returned
            self._returned.discard(peer.code)
        if self.check_peer is not None and not self._tls.insecure:
            self.check_peer(peer.code, peer.address)  # before anything is handed over (see peer_check.py)
        if returned:  # wait (briefly) for the connection to come up, then the call has its usual deadline
            try:
                grpc.channel_ready_future(self._channel(peer.code, peer.address)).result(timeout=RETURN_WAIT_S)
            except grpc.FutureTimeoutError:
                raise TransportError(f"no connection to {peer.code} at {peer.address} within "
                                     f"{RETURN_WAIT_S:.0f}s") from None
        return super().deliver(peer, envelopes)

    def reload(self, tls: TlsMaterial) -> None:
        """New connections use `tls`; channels made before keep serving the calls already on them and
        are closed once those calls' deadlines have passed."""
        with self._lock:
            old = list(self._channels.values())
            self._tls = tls
            self._channels.clear()
            self._calls.clear()
            self._retired.extend(old)
        if old:
            t = threading.Timer(RETIRE_AFTER_S, self._close_retired, args=(old,))
            t.daemon = True
            t.start()

    def _close_retired(self, channels: list[grpc.Channel]) -> None:
        with self._lock:
            channels = [c for c in channels if c in self._retired]
            self._retired = [c for c in self._retired if c not in channels]
        for c in channels:
            c.close()

    def close(self) -> None:
        with self._lock:
            for c in [*self._channels.values(), *self._retired]:
                c.close()
            self._channels.clear()
            self._calls.clear()
            self._retired.clear()


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()
