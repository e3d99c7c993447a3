"""Every call a node makes to a peer, as one interface: `PeerTransport`.

Deliver, register, heartbeat, lookup, children, checkpoint (and the parent's copy of it),
CRL push and the health probe: nothing else in the node reaches another node. The named
calls are written here once (requests, what a good answer must look like, one error);
an implementation says only how one unary call travels:

- `node.transport.grpc_peers.GrpcTransport`: gRPC over mutual TLS, the peer's code pinned
  through the certificate's SAN, one channel per peer;
- `node.transport.in_process.InProcessTransport`: the peer node's own servicers, behind
  its own interceptors, in this process, with our certificate as the caller's.

Whatever goes wrong, the caller gets `TransportError`: `status` is the gRPC status the peer
answered (None: no answer at all), `refused` its reason when it is one of ours, read the
same way from either implementation (`failure_of`).
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2

from ..envelope import varint
from ..errors import Rejected
from ..grpc_errors import describe, detail_of, rejected_of
from ..pb import exchange_pb2 as xpb
from ..pb import registry_pb2 as rpb

DELIVER_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 5.0


class Peer(NamedTuple):
    """The agency we mean to reach, and where: the answer must come from `code`, whatever `address` holds."""
    code: str
    address: str


class TransportError(Exception):
    """The peer did not answer usefully this time. `status`: the gRPC status it answered (None: no answer,
    or an answer we refused); `refused`: its reason, when it is one of ours."""

    def __init__(self, text: str, status: grpc.StatusCode | None = None, refused: Rejected | None = None,
                 detail: str = "") -> None:
        super().__init__(text)
        self.status, self.refused, self.detail = status, refused, detail  # detail: the status message

    @property
    def what(self) -> str:
        """Short: the status's name, or the whole text when there was no answer."""
        return self.status.name if self.status is not None else str(self)


def failure_of(rpc_error: grpc.RpcError) -> TransportError:
    """A failed call as the one error of the interface (`rpc_error`: a real call's, or the same status
    answered in process)."""
    code = rpc_error.code() if callable(getattr(rpc_error, "code", None)) else grpc.StatusCode.UNKNOWN
    return TransportError(describe(rpc_error), code, rejected_of(rpc_error), detail_of(rpc_error))


@dataclass(frozen=True)
class Method:
    """One peer method: its gRPC path and the message it answers."""
    path: str
    response: type[Message]


def _method(file, service: str, name: str, response: type[Message]) -> Method:
    return Method(f"/{file.DESCRIPTOR.services_by_name[service].full_name}/{name}", response)


DELIVER_BATCH = _method(xpb, "Exchange", "DeliverBatch", xpb.DeliverBatchResponse)
REGISTER = _method(rpb, "Registry", "Register", rpb.RegisterResponse)
HEARTBEAT = _method(rpb, "Registry", "Heartbeat", rpb.HeartbeatResponse)
LOOKUP = _method(rpb, "Registry", "Lookup", rpb.LookupResponse)
CHILDREN = _method(rpb, "Registry", "Children", rpb.ChildrenResponse)
CHECKPOINT = _method(rpb, "Registry", "Checkpoint", rpb.CheckpointResponse)
LATEST_CHECKPOINT = _method(rpb, "Registry", "LatestCheckpoint", rpb.CheckpointResponse)
PUSH_CRL = _method(rpb, "Registry", "PushCrl", rpb.CrlPushResponse)
PUSH_SUCCESSIONS = _method(rpb, "Registry", "PushSuccessions", rpb.SuccessionPushResponse)
HAND_OVER = _method(rpb, "Registry", "HandOver", rpb.HandOverResponse)
HEALTH_CHECK = _method(health_pb2, "Health", "Check", health_pb2.HealthCheckResponse)


_ENVELOPES_TAG = b"\x0a"  # DeliverBatchRequest.envelopes: field 1, length-delimited


class EncodedBatch:
    """A DeliverBatchRequest encoded by hand, for the transports' serializers (`SerializeToString`): each
    envelope is a field record, its tag and length ahead of its bytes, so they are copied once into the
    request instead of into a message and out again (19 -> 2 us an envelope of 10 KB, at every hand-over).
    The bytes are what the message would encode (tests/transport/test_encoded_batch.py)."""

    __slots__ = ("_data",)

    def __init__(self, envelopes: list[bytes]) -> None:
        parts = []
        for raw in envelopes:
            parts.append(_ENVELOPES_TAG + varint(len(raw)))
            parts.append(raw)
        self._data = b"".join(parts)

    def SerializeToString(self) -> bytes:  # noqa: N802 - the protobuf name the serializers call
        return self._data


class PeerTransport(abc.ABC):
    """How this node reaches its peers. Subclasses give `call` (one unary call, answered or TransportError)
    and `call_each` (the same call to many peers at once); the rest is the same for every transport."""

    @abc.abstractmethod
    def call(self, peer: Peer, method: Method, request: Message, timeout: float) -> Message:
        """`method(request)` at `peer`, within `timeout` seconds: its answer, or TransportError."""

    @abc.abstractmethod
    def call_each(self, peers: Sequence[Peer], method: Method, request: Message,
                  timeout: float) -> dict[str, Message | TransportError]:
        """The same call to every peer at once: code -> answer or TransportError (one failing never stops
        the others)."""

    def expect(self, code: str) -> None:
        """`code` just answered us another way: the next delivery may wait for its connection."""

    def reload(self, tls) -> None:
        """New calls present `tls` (node.transport.grpc_peers.TlsMaterial); calls in flight finish on theirs."""

    def close(self) -> None:
        """Calls are over: free what the transport holds."""

    # ---- the calls a node makes ---------------------------------------------------

    def deliver(self, peer: Peer, envelopes: list[bytes]) -> list[xpb.Outcome]:
        """Hand a batch to the next hop: one outcome (a receipt or a refusal) per envelope, in order."""
        resp = self.call(peer, DELIVER_BATCH, EncodedBatch(envelopes), DELIVER_TIMEOUT_S)  # type: ignore[arg-type]
        if len(resp.outcomes) != len(envelopes):
            raise TransportError(f"peer answered {len(resp.outcomes)} outcomes for {len(envelopes)} envelopes")
        return list(resp.outcomes)

    def register(self, peer: Peer, record: rpb.SignedRecord, timeout: float = CALL_TIMEOUT_S) -> rpb.RegisterResponse:
        return self.call(peer, REGISTER, record, timeout)

    def heartbeat(self, peer: Peer, request: rpb.HeartbeatRequest,
                  timeout: float = CALL_TIMEOUT_S) -> rpb.HeartbeatResponse:
        return self.call(peer, HEARTBEAT, request, timeout)

    def lookup(self, peer: Peer, request: rpb.LookupRequest, timeout: float = CALL_TIMEOUT_S) -> rpb.LookupResponse:
        return self.call(peer, LOOKUP, request, timeout)

    def children(self, peer: Peer, request: rpb.ChildrenRequest,
                 timeout: float = CALL_TIMEOUT_S) -> rpb.ChildrenResponse:
        return self.call(peer, CHILDREN, request, timeout)

    def checkpoint(self, peer: Peer, signed: rpb.SignedCheckpoint,
                   timeout: float = CALL_TIMEOUT_S) -> rpb.CheckpointResponse:
        return self.call(peer, CHECKPOINT, signed, timeout)

    def latest_checkpoint(self, peer: Peer, request: rpb.CheckpointRequest,
                          timeout: float = CALL_TIMEOUT_S) -> rpb.CheckpointResponse:
        return self.call(peer, LATEST_CHECKPOINT, request, timeout)

    def push_crl(self, peers: Sequence[Peer], der: bytes,
                 timeout: float = CALL_TIMEOUT_S) -> dict[str, rpb.CrlPushResponse | TransportError]:
        return self.call_each(peers, PUSH_CRL, rpb.CrlPush(crl_der=der), timeout)

    def push_successions(self, peers: Sequence[Peer], lists: list[rpb.SignedSuccessionList],
                         timeout: float = CALL_TIMEOUT_S) -> dict[str, rpb.SuccessionPushResponse | TransportError]:
        return self.call_each(peers, PUSH_SUCCESSIONS, rpb.SuccessionPush(lists=lists), timeout)

    def hand_over(self, peer: Peer, chunk: rpb.HandOverChunk, timeout: float) -> rpb.HandOverResponse:
        """One chunk of our mailbox to our successor (node.takeover.send)."""
        return self.call(peer, HAND_OVER, chunk, timeout)

    def probe(self, peers: Sequence[Peer], timeout: float) -> dict[str, bool | TransportError]:
        """Ask each peer's health (the agency we mean, over the peer surface): code -> SERVING or not."""
        answers = self.call_each(peers, HEALTH_CHECK, health_pb2.HealthCheckRequest(), timeout)
        return {code: a if isinstance(a, TransportError) else a.status == health_pb2.HealthCheckResponse.SERVING
                for code, a in answers.items()}
