"""Sealing at hand-over: nothing this node made leaves in clear while its recipient has a seal key.

A Send is taken even when the recipient's signed record cannot be looked up at that moment (the
parent is down: the common case of a district link), so the envelope is made in clear and kept in
this node's own outbox (node.exchange.outgoing._seal_to). Before any envelope this node signed is
handed over, this looks the key up again: found, the envelope is made again sealed, with its first
message id and times, and replaces the stored bytes; the record publishing no key (a node older
than sealing) lets it go in clear under `preferred` and refuses a document under `required`; the
tree not reachable keeps it here for a later attempt (the hop backs off: it is the same way up);
the tree answering that the agency has not registered (yet) keeps it here in every mode ("parking
at the sender"), asked for again every retry.max_delay, until `limits.park_for` after it was made:
then its sender gets a non-delivery notice (UNKNOWN_RECIPIENT), as a relay parking it would send.
Only a signed record without a seal key lets a document go in clear (`preferred`); a relay's word
that there is no record never does, or any relay on the way could read mail for the agencies below
it that have not registered, by saying so (issue 18). Relays' envelopes are not ours to touch.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Callable

from ..envelope import own_header
from ..errors import Reason, Rejected
from ..pb import envelope_pb2 as pb
from ..store import outbox
from ..store.database import Database
from .hop import Prepared, ready_as_is
from .outgoing import EnvelopeMaker

log = logging.getLogger(__name__)

# the tree answered, and has no record of the recipient (yet): there is no key to seal to, so it stays here
# until the agency registers and its key can be had (or limits.park_for has passed)
NO_RECORD = (Reason.NOT_REGISTERED_YET, Reason.UNKNOWN_RECIPIENT)


class LateSealer:
    def __init__(self, db: Database, maker: EnvelopeMaker, seal_key_of: Callable[[str], bytes]) -> None:
        self.db, self.maker, self.seal_key_of = db, maker, seal_key_of

    def __call__(self, batch: list[outbox.Pending]) -> Prepared:
        if not self.maker.sealing:
            return ready_as_is(batch)
        out, resealed = Prepared([]), []
        keys: dict[str, bytes | Rejected] = {}  # recipient -> its key or why none: asked once per batch
        for p in batch:
            if p.sender != self.maker.code:  # relayed: not ours to touch, and not worth parsing on the hot path
                out.ready.append(p)
                continue
            header = own_header(p.envelope)  # the whole envelope is parsed only to be made again
            if header.seal != pb.PLAIN:
                out.ready.append(p)
                continue
            try:
                key = self._key(p.recipient, keys)
            except Rejected as r:
                why = f"kept until the seal key of {p.recipient} is known: {r.public_text}"
                if r.reason not in NO_RECORD:
                    out.waiting.append((p.message_id, why))  # the tree cannot be asked: the link's trouble
                elif self._parked_too_long(p):
                    out.refused.append((p, Rejected(Reason.UNKNOWN_RECIPIENT, f"{p.recipient} did not register "
                                                    "within limits.park_for; no seal key to send it to")))
                else:  # any mode: a relay's word is no record, so it waits on its own for a registration
                    out.deferred.append((p.message_id, why))
                continue
            if not key:
                if self.maker.seal_mode == "required" and header.kind == pb.DOCUMENT:
                    out.refused.append((p, Rejected(Reason.SEAL_KEY_MISSING, f"{p.recipient} publishes no seal key "
                                                                            "(sealing.mode: required)",
                                                   metadata={"recipient": p.recipient})))
                else:
                    out.ready.append(p)  # an older node (preferred), or a reply about mail that came in clear
                continue
            raw = self.maker.reseal(pb.Envelope.FromString(p.envelope), header, key)
            resealed.append((p.message_id, raw))
            out.ready.append(dataclasses.replace(p, envelope=raw))
        if resealed:
            with self.db.transaction() as tx:
                outbox.replace_envelopes(tx, resealed)
            log.info("sealed %d envelope(s) at hand-over, their recipients' keys now known", len(resealed))
        return out

    def _key(self, recipient: str, keys: dict[str, bytes | Rejected]) -> bytes:
        """The recipient's seal key, looked up once per batch (a batch is mostly for one agency: each
        lookup is a directory read, or a wait for the tree when it is down), its refusal kept as well."""
        if recipient not in keys:
            try:
                keys[recipient] = self.seal_key_of(recipient)
            except Rejected as r:
                keys[recipient] = r
        found = keys[recipient]
        if isinstance(found, Rejected):
            raise found
        return found

    def _parked_too_long(self, p: outbox.Pending) -> bool:
        return self.maker.clock.now_ms() - p.created_ms > self.maker.limits.park_for * 1000
