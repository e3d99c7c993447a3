"""The in-process transport: nodes of one process call each other's peer servicers directly.

A node on a `LocalNetwork` serves its peer surface as a `LocalServer`: the very servicer
objects (Exchange, Registry, health) and interceptors (node.peer_gate, node.interceptor)
its gRPC peer server would have, found by the address its peers know it at. A call
travels as it would over gRPC, only without sockets:

- the request and the answer cross as bytes (serialized, size-checked against both sides'
  message limits, parsed by the other side), so nothing is shared between two nodes;
- the handshake is done the same way: each side's certificate must chain to the other's
  anchors and be in its validity period, and the answering node must hold a certificate
  for the code the caller meant (the SAN pin); otherwise UNAVAILABLE, as a failed TLS
  handshake is; before a delivery the answering certificate is also checked against the
  caller's CRL (as node.transport.peer_check does over the network);
- the servicers see the caller's certificate where gRPC puts it (the auth context's
  `x509_pem_cert`), so node.peer_gate and every servicer identify and refuse the caller as
  they do for a TLS peer; a refusal comes back as the same status, details and trailers,
  read by the same code (`interface.failure_of`).

What differs: the call runs in the caller's thread (no worker pool, no extra thread), and
a deadline is told to the servicer (`time_remaining`) but does not cut a call short.
"""
from __future__ import annotations

import functools
import threading
import time
from typing import Callable, NamedTuple, Sequence

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from google.protobuf.message import DecodeError, Message

from ..errors import Reason, Rejected
from ..identity import certs
from ..identity.trust import TrustStore
from ..interceptor import refuse
from .grpc_peers import TlsMaterial, grpc_options
from .interface import Method, Peer, PeerTransport, TransportError, failure_of

HANDSHAKE_REFUSALS = (Reason.UNTRUSTED_CERT, Reason.CERT_EXPIRED)  # what a TLS handshake itself refuses


class LocalRpcError(grpc.RpcError):
    """A call's status as a gRPC client would see it (code, details, trailing metadata)."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata=()) -> None:
        super().__init__(details)
        self._code, self._details, self._trailing = code, details, tuple(trailing_metadata or ())

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self):
        return self._trailing


class _Aborted(Exception):
    """Raised by LocalContext.abort*, as grpc's own context raises to end the servicer."""


class _CallDetails(NamedTuple):  # grpc.HandlerCallDetails
    method: str
    invocation_metadata: tuple


class LocalContext:
    """The part of grpc.ServicerContext the peer servicers and interceptors use."""

    def __init__(self, caller_pem: bytes | None, caller: str, timeout: float) -> None:
        self._auth = {"x509_pem_cert": [caller_pem], "transport_security_type": [b"ssl"]} if caller_pem else {}
        self._peer = f"inproc:{caller}"
        self._deadline = time.monotonic() + timeout
        self.status: tuple[grpc.StatusCode, str, tuple] | None = None
        self._code, self._details, self._trailing = grpc.StatusCode.OK, "", ()

    def auth_context(self) -> dict:
        return dict(self._auth)

    def peer(self) -> str:
        return self._peer

    def invocation_metadata(self) -> tuple:
        return ()

    def time_remaining(self) -> float:
        return max(0.0, self._deadline - time.monotonic())

    def is_active(self) -> bool:
        return self.time_remaining() > 0

    def add_callback(self, callback) -> bool:
        return False  # nothing is cancelled in process

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def set_details(self, details: str) -> None:
        self._details = details

    def set_trailing_metadata(self, metadata) -> None:
        self._trailing = tuple(metadata or ())

    def abort(self, code: grpc.StatusCode, details: str):
        self.status = (code, details, self._trailing)
        raise _Aborted()

    def abort_with_status(self, status: grpc.Status):
        self.status = (status.code, status.details, tuple(status.trailing_metadata or ()))
        raise _Aborted()

    def outcome(self) -> LocalRpcError | None:
        """The status the servicer ended the call with, if not OK."""
        if self.status is not None:
            return LocalRpcError(*self.status)
        if self._code != grpc.StatusCode.OK:
            return LocalRpcError(self._code, self._details, self._trailing)
        return None


@functools.lru_cache(maxsize=4096)  # every call's handshake converts the caller's certificate: a few per agency
def _der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


class LocalServer:
    """A node's peer surface in this process: the generated `add_*Servicer_to_server` functions register
    on it as on a grpc.Server; `handle` runs one call through the same interceptors."""

    def __init__(self, interceptors: Sequence[grpc.ServerInterceptor], tls: Callable[[], TlsMaterial],
                 trust: TrustStore, max_message: int) -> None:
        self._interceptors = list(interceptors)
        self.tls, self.trust = tls, trust
        self.limit = dict(grpc_options(max_message))["grpc.max_receive_message_length"]
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}
        self.stopping = threading.Event()  # set by close(): calls are refused from then on
        self._calls = 0
        self._idle = threading.Condition()

    def close(self, grace: float) -> None:
        """What a gRPC server's stop does for a node that has none of its own (in process, or on a host's
        servers): refuse new calls UNAVAILABLE (retryable, as a stopped server's), then wait, at most `grace`,
        for the unary calls in progress, so none finds its database closed under it (an INTERNAL to the peer)."""
        with self._idle:
            self.stopping.set()
            self._idle.wait_for(lambda: self._calls == 0, grace)

    def _tracked(self, handler: grpc.RpcMethodHandler | None) -> grpc.RpcMethodHandler | None:
        if handler is None or handler.unary_unary is None:
            return handler  # streams (health Watch) end with the node's health, not here
        inner = handler.unary_unary

        def behaviour(request, context):
            with self._idle:
                if self.stopping.is_set():
                    refuse(context, Rejected(Reason.UNREACHABLE, "the agency is stopping"))
                self._calls += 1
            try:
                return inner(request, context)
            finally:
                with self._idle:
                    self._calls -= 1
                    self._idle.notify_all()
        return grpc.unary_unary_rpc_method_handler(behaviour, request_deserializer=handler.request_deserializer,
                                                   response_serializer=handler.response_serializer)

    # ---- what add_*Servicer_to_server calls ----------------------------------------

    def add_generic_rpc_handlers(self, handlers) -> None:
        pass  # the same handlers come through add_registered_method_handlers

    def add_registered_method_handlers(self, service: str, handlers: dict) -> None:
        for name, handler in handlers.items():
            self._handlers[f"/{service}/{name}"] = handler

    # ---- serving --------------------------------------------------------------------

    def certificate(self) -> bytes | None:
        """The certificate this node answers a handshake with (DER; None in plain-text mode)."""
        tls = self.tls()
        return None if tls.insecure else _der(tls.cert_pem)

    def accept(self, caller_pem: bytes | None) -> None:
        """The handshake, server side: the caller's certificate chains to our anchors and is valid now."""
        if self.tls().insecure != (caller_pem is None):
            raise LocalRpcError(grpc.StatusCode.UNAVAILABLE, "handshake failed: one side speaks TLS, the other not")
        if caller_pem is None:
            return
        try:
            self.trust.identify(_der(caller_pem))
        except Rejected as r:
            if r.reason in HANDSHAKE_REFUSALS:
                raise LocalRpcError(grpc.StatusCode.UNAVAILABLE,
                                    f"handshake failed: the peer refused our certificate ({r.public_text})") from None
        except ValueError:
            raise LocalRpcError(grpc.StatusCode.UNAVAILABLE, "handshake failed: our certificate does not parse") from None

    def handle(self, path: str, request: bytes, caller_pem: bytes | None, caller: str, timeout: float) -> bytes:
        """Serve one unary call: the answer's bytes, or LocalRpcError with the status a gRPC server gives."""
        if len(request) > self.limit:
            raise LocalRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"Received message larger than max ({len(request)} vs. {self.limit})")
        handler = self.intercepted(_CallDetails(path, ()))
        if handler is None or handler.unary_unary is None:
            raise LocalRpcError(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
        try:
            message = handler.request_deserializer(request)
        except Exception:  # noqa: BLE001 - as grpc's server: the bytes are the caller's, not ours
            raise LocalRpcError(grpc.StatusCode.INTERNAL, "Exception deserializing request!") from None
        context = LocalContext(caller_pem, caller, timeout)
        try:
            response = handler.unary_unary(message, context)
        except _Aborted:
            response = None
        except Exception as e:  # noqa: BLE001 - as grpc's server answers an exception no interceptor took
            raise LocalRpcError(grpc.StatusCode.UNKNOWN, f"Exception calling application: {e}") from None
        failed = context.outcome()
        if failed is not None:
            raise failed
        answer = handler.response_serializer(response)
        if len(answer) > self.limit:
            raise LocalRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"Sent message larger than max ({len(answer)} vs. {self.limit})")
        return answer

    def intercepted(self, details) -> grpc.RpcMethodHandler | None:
        """The handler as grpc's server builds it: the first interceptor outermost (`details`: a
        grpc.HandlerCallDetails; a host's peer server dispatches a real call to it)."""
        def lookup(d):
            return self._handlers.get(d.method)
        continuation = lookup
        for interceptor in reversed(self._interceptors):
            continuation = (lambda i, nxt: lambda d: i.intercept_service(nxt, d))(interceptor, continuation)
        return self._tracked(continuation(details))


class LocalNetwork:
    """The nodes of this process, by the address their peers know them at."""

    def __init__(self) -> None:
        self._servers: dict[str, LocalServer] = {}
        self._lock = threading.Lock()

    def attach(self, address: str, server: LocalServer) -> None:
        with self._lock:
            if self._servers.get(address, server) is not server:
                raise ValueError(f"{address} is already served in this process")
            self._servers[address] = server

    def detach(self, server: LocalServer) -> None:
        with self._lock:
            for address in [a for a, s in self._servers.items() if s is server]:
                del self._servers[address]

    def at(self, address: str) -> LocalServer | None:
        with self._lock:
            return self._servers.get(address)

    def serving(self, peer: Peer) -> LocalServer | None:
        """The server that answers a call meant for `peer` (here: found by its address)."""
        return self.at(peer.address)


class InProcessTransport(PeerTransport):
    """PeerTransport to the nodes of a LocalNetwork, presenting our certificate as a TLS client would."""

    def __init__(self, network: LocalNetwork, tls: TlsMaterial, trust: TrustStore, max_message: int,
                 code: str) -> None:
        self.network, self.trust, self.code = network, trust, code
        self.limit = dict(grpc_options(max_message))["grpc.max_receive_message_length"]
        self._tls = tls

    def reload(self, tls: TlsMaterial) -> None:
        self._tls = tls

    def _reach(self, peer: Peer) -> tuple[LocalServer, Rejected | None]:
        """The server at `peer.address`, once it proved to be `peer.code` (the handshake, client side), and
        why its certificate is not trusted beyond the handshake (revoked), if it is not."""
        server = self.network.serving(peer)
        if server is None:
            raise TransportError(f"UNAVAILABLE: nothing serves {peer.address} in this process",
                                 grpc.StatusCode.UNAVAILABLE)
        der = server.certificate()
        if (der is None) != self._tls.insecure:
            raise TransportError("UNAVAILABLE: handshake failed: one side speaks TLS, the other not",
                                 grpc.StatusCode.UNAVAILABLE)
        distrust = None
        if der is not None:
            try:
                answered = self.trust.identify(der).code
            except Rejected as r:
                if r.reason in HANDSHAKE_REFUSALS:
                    raise TransportError(f"UNAVAILABLE: handshake failed: {peer.address} answers with a certificate "
                                         f"we do not trust ({r.public_text})", grpc.StatusCode.UNAVAILABLE) from None
                answered = certs.agency_code(x509.load_der_x509_certificate(der))  # revoked: a handshake passes
                distrust = r
            if answered != peer.code:
                raise TransportError(f"UNAVAILABLE: handshake failed: {peer.address} is {answered}, not {peer.code}",
                                     grpc.StatusCode.UNAVAILABLE)
        return server, distrust

    def call(self, peer: Peer, method: Method, request: Message, timeout: float) -> Message:
        server, _ = self._reach(peer)
        data = request.SerializeToString()
        if len(data) > self.limit:
            raise TransportError(f"RESOURCE_EXHAUSTED: request of {len(data)} bytes, limit {self.limit}",
                                 grpc.StatusCode.RESOURCE_EXHAUSTED)
        caller_pem = None if self._tls.insecure else self._tls.cert_pem
        try:
            server.accept(caller_pem)
            answer = server.handle(method.path, data, caller_pem, self.code, timeout)
        except LocalRpcError as e:
            raise failure_of(e) from None
        if len(answer) > self.limit:
            raise TransportError(f"RESOURCE_EXHAUSTED: answer of {len(answer)} bytes, limit {self.limit}",
                                 grpc.StatusCode.RESOURCE_EXHAUSTED)
        try:
            return method.response.FromString(answer)
        except DecodeError:
            raise TransportError("INTERNAL: Exception deserializing response!", grpc.StatusCode.INTERNAL) from None

    def call_each(self, peers: Sequence[Peer], method: Method, request: Message,
                  timeout: float) -> dict[str, Message | TransportError]:
        answers: dict[str, Message | TransportError] = {}
        for peer in peers:
            try:
                answers[peer.code] = self.call(peer, method, request, timeout)
            except TransportError as e:
                answers[peer.code] = e
        return answers

    def deliver(self, peer: Peer, envelopes: list[bytes]):
        _, distrust = self._reach(peer)
        if distrust is not None:  # as peer_check.PeerCheck: nothing is handed to a revoked certificate
            raise TransportError(f"{peer.code} at {peer.address} answers with a certificate we do not trust "
                                 f"({distrust.public_text}); nothing handed over")
        return super().deliver(peer, envelopes)
