"""Taking custody of a checked batch: one transaction that only writes, everything signed before it.

The receipts are signed (node.receipts, one signature over the batch's Merkle root) and each
automatic 01 is made, signed and sealed (the documents layer, `LocalMail.prepare`) before the
writer is taken, so the lock that every commit, hop claim and API write waits for is held for
SQL alone. Inside it: duplicates are settled (node.store.custody), the documents layer decides
whether each status or change of ours may be said (by what is stored, so it stays inside), and
the envelopes are stored with the rows they were handed: all in one savepoint, and only when one
of them fails there, each in a savepoint of its own, so that one is refused alone.

A receipt's signed root covers exactly the envelopes stored: it is signed ahead for every
distinct envelope of the batch, and used only when all of them stand; when one does not (a
duplicate, a refusal by what is stored) the receipts are signed again inside, for those that
stand, or a peer could prove custody of an envelope refused. Nothing is promised before the
commit: the caller hands the receipts out once `transaction()` has returned, after the fsync.
"""
from __future__ import annotations

import logging
from typing import Callable, Mapping

from ..errors import Reason, Rejected
from ..incidents import log_incident
from ..pb import envelope_pb2 as pb
from ..store import audit, custody
from ..store.custody import Incoming
from ..store.database import Database

log = logging.getLogger(__name__)

MakeReceipts = Callable[[list[tuple[str, bytes]]], list[pb.Receipt]]
Authorize = Callable[[Incoming, Mapping[str, str]], None]


class Presigned:
    """Receipts signed before the transaction for a batch's distinct envelopes, in batch order."""

    def __init__(self, items: list[Incoming], make: MakeReceipts) -> None:
        first: dict[str, bytes] = {}  # message id -> digest of its first occurrence (a dict keeps batch order)
        for it in items:
            first.setdefault(it.message_id, it.digest)
        self.pairs = list(first.items())
        self.make = make
        self.receipts = make(self.pairs)

    def covering(self, pairs: list[tuple[str, bytes]]) -> list[pb.Receipt]:
        """The receipts for exactly `pairs`: the ones signed ahead when they are the same set, else new ones."""
        if pairs == self.pairs:
            return self.receipts
        return self.make(pairs)


def take(db: Database, items: list[Incoming], make_receipts: MakeReceipts, now_ms: int,
         authorize: Authorize | None = None) -> list[pb.Receipt | Rejected]:
    """Store every new item, answer duplicates with their stored receipt; one commit for all.

    Every item gets its own outcome. Duplicates are settled first; then, for our own mail,
    `authorize(item, earlier)` decides against what is stored and the new documents ahead in
    this batch (`earlier`: message id -> sender), so a decoy reusing a stored message id cannot
    vouch for a forged revoke. Each item is stored in a savepoint with the rows it carries
    (`item.writes`); one that fails there is rolled back and refused alone: with the reason it
    raised (a Rejected), else INTERNAL."""
    if not items:
        return []
    signed = Presigned(items, make_receipts)  # outside the lock
    return _commit(db, items, signed, now_ms, authorize)


def _commit(db: Database, items: list[Incoming], signed: Presigned, now_ms: int,
            authorize: Authorize | None) -> list[pb.Receipt | Rejected]:
    with db.transaction() as tx:
        settled = custody.settle(tx, items, now_ms)
        new: list[int] = []
        earlier: dict[str, str] = {}  # new documents of ours ahead in this batch
        for i in settled.fresh:
            item = items[i]
            if item.next_hop is None and authorize is not None:
                try:
                    authorize(item, earlier)
                except Rejected as r:
                    settled.refuse(items, i, r, now_ms)
                    continue
                if item.header.kind == pb.DOCUMENT:
                    earlier[item.message_id] = item.header.sender
            new.append(i)
        receipts = signed.covering([(items[i].message_id, items[i].digest) for i in new])
        if _stored_together(db, tx, items, new, receipts, now_ms):
            for i, receipt in zip(new, receipts):
                settled.outcomes[i] = receipt
                settled.audit_rows.append(custody.received_row(items[i], now_ms))
            audit.append_many(tx, settled.audit_rows)
            return settled.results()
        stored: list[int] = []
        for i, receipt in zip(new, receipts):
            item = items[i]
            try:
                with db.transaction():  # a savepoint: this item alone is undone if it fails
                    _store(tx, item, receipt, now_ms)
            except Rejected as r:  # refused while stored: a refusal, not a bug
                settled.refuse(items, i, r, now_ms)
                continue
            except Exception:
                correlation_id = log_incident(f"storing {item.message_id} from {item.from_peer}")
                settled.refuse(items, i, Rejected(Reason.INTERNAL,
                                                  f"could not be stored (correlation id {correlation_id})"), now_ms)
                continue
            settled.outcomes[i] = receipt
            settled.audit_rows.append(custody.received_row(item, now_ms))
            stored.append(i)
        if len(stored) != len(new):
            # one failed in its savepoint: its leaf is under the root the others carry; sign again for the
            # stored ones alone (their rows hold the receipts: rewritten in this same transaction)
            again = signed.make([(items[i].message_id, items[i].digest) for i in stored])
            for i, receipt in zip(stored, again):
                custody.replace_receipt(tx, items[i].message_id, receipt)
                settled.outcomes[i] = receipt
        audit.append_many(tx, settled.audit_rows)
    return settled.results()


def _stored_together(db: Database, tx, items: list[Incoming], new: list[int], receipts: list[pb.Receipt],
                     now_ms: int) -> bool:
    """Every new item stored in one savepoint, the common case: two statements per batch instead of two per
    envelope. False, with nothing of it kept, when any item fails: each is then stored in a savepoint of
    its own (its writes run again from the start: they only write rows and queue after-commit actions,
    which the rollback drops), so one that fails is still refused alone."""
    try:
        with db.transaction():
            for i, receipt in zip(new, receipts):
                _store(tx, items[i], receipt, now_ms)
    except Exception:  # noqa: BLE001 - judged again item by item below, where each failure is named
        return False
    return True


def _store(tx, item: Incoming, receipt: pb.Receipt, now_ms: int) -> None:
    """One envelope's custody rows and what the documents layer records with it (`item.writes`)."""
    custody.store(tx, item, receipt, now_ms)
    for write in item.writes:
        write(tx)
