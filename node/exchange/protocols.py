"""What the exchange asks of the pieces around it, as small Protocols.

Each collaborator is passed to a constructor (see `node.runtime.Node`), so a reader
follows a call without knowing how the node was assembled:

- `Waker`: the dispatcher's per-hop queues. Whoever commits an envelope for a next hop
  wakes that hop's sender once the commit is done.
- `node.events.EventSink`: the local API's event bus (`node.events.EventBus`). Events are
  published only after the commit that makes them true.
- `Timer`: wakes a hop later, when its backoff ends (APScheduler in a node; nothing in
  unit tests, which drive attempts with a fake clock).
- `LocalMail`: the documents layer (`node.documents.lifecycle.Lifecycle`), called by
  intake for mail addressed to this node: it checks what its handlers will read before
  the custody transaction, refuses a status or change that its signer has no right to
  send (by what is stored, once the batch's duplicates are settled), and hands intake,
  before the custody transaction, the rows recording what arrived (its automatic 01
  already signed and sealed), which that transaction writes.
- `CertificatePins`: the registry's pins (`node.registry.pins.Pins`): a registered child hands
  over and marks envelopes only with the certificate it registered.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping, Protocol

from ..pb import envelope_pb2 as pb

if TYPE_CHECKING:
    from ..store.custody import Incoming
    from ..store.database import Transaction


class Waker(Protocol):
    def wake(self, hop: str) -> None: ...


class Timer(Protocol):
    def call_later(self, key: str, delay_s: float, action: Callable[[], None]) -> None:
        """Run `action` after `delay_s`; a later call with the same key replaces a pending one."""


class LocalMail(Protocol):
    def check(self, header: pb.Header, payload: pb.Payload) -> None:
        """Before the custody transaction: raise Rejected if a handler could not take this payload."""

    def authorize(self, item: "Incoming", earlier: Mapping[str, str]) -> None:
        """In the custody transaction, duplicates settled: raise Rejected if the signer may not say this
        (`earlier`: new documents, id -> sender, ahead in the same batch)."""

    def prepare(self, item: "Incoming") -> tuple[Callable[["Transaction"], object], ...]:
        """Before the custody transaction: the rows storing `item` records (any automatic reply made, signed
        and sealed now), as writes called with the transaction in its savepoint; raise Rejected if it
        cannot be taken (its reply cannot be made)."""


class PlainMail:
    """LocalMail for a node without the documents layer (unit tests of the exchange): refuses nothing,
    records nothing beyond the mailbox."""

    def check(self, header, payload) -> None:
        pass

    def authorize(self, item, earlier) -> None:
        pass

    def prepare(self, item) -> tuple:
        return ()


PLAIN_MAIL = PlainMail()


class CertificatePins(Protocol):
    def check(self, code: str, cert_der: bytes, what: str) -> None:
        """Raise Rejected(CERT_NOT_REGISTERED) if `code` is registered here with other certificates."""


class NoPins:
    """For a node without the registry (unit tests of the exchange): nothing is pinned."""

    def check(self, code: str, cert_der: bytes, what: str) -> None:
        pass


NO_PINS = NoPins()
