"""Delivery statistics: what each agency sent, received and answered, and how well it
reports processing statuses back — counted by every node for its own agency and passed
up the tree on heartbeats, so any node can show its whole subtree (no central database).

Counters of one agency (`AgencyStats`, computed by `node.store.stats.own_counters`):

- ``docs_sent``: documents it sent — one per send, whatever the number of recipients
  (``docs`` rows of kind DOCUMENT); ``envelopes_sent``: their envelopes, one per recipient
  (``outbox`` rows of kind DOCUMENT that originated here, relays excluded).
- ``docs_received``: document envelopes that arrived in its mailbox (``inbox`` rows of kind
  DOCUMENT; revocations, updates and replacements are documents too).
- ``statuses_sent``: statuses it returned on documents it received (``status_out``; the
  automatic 01 "arrived" counts); ``statuses_received``: statuses others returned on
  documents it sent (``status_in``).
- ``docs_answered_3`` / ``docs_answered_5``: received documents on which it returned at
  least 3 / 5 *distinct* status codes.
- ``distinct_codes_returned``: distinct status codes it has ever returned.

The compliance bar. The field measures "agencies returning 3 or more statuses" and
"5 or more" (85/95 and 42/95 agencies at the national launch). Here an agency **meets
the >= N bar when it has returned at least N distinct status codes** (its
``distinct_codes_returned`` >= N): that is what says its software implements that many
statuses. How consistently it uses them is the share of received documents answered
with N or more distinct codes: ``share_answered_N = sum(docs_answered_N) /
sum(docs_received)`` over the agencies listed (0 when they received nothing).

A node's view of its subtree is its own counters plus the rows its children reported on
their last heartbeats (each child reports itself and everything below it); a code seen
more than once keeps its newest ``as_of_ms``, and the node's own row always wins.

Counters are signed where they are counted (``SignedStats``): each node signs its own,
and ancestors forward the signed rows unchanged, keeping only those whose signature and
certificate prove the agency and whose code lies in the reporting child's subtree. A
child can therefore neither invent agencies nor inflate anyone's figures but its own.
Each row lists the agency's registered children, so a subtree view names the agencies
that have not reported (``not_reported``).
"""
from __future__ import annotations

from .core import (BARS, collect, heartbeat_payload, meets, newest_by_code, record_heartbeat, sign, summarize, verify,
                   vouched)
from .service import SERVICE_NAME, StatsService, add_to_server

__all__ = ["BARS", "SERVICE_NAME", "StatsService", "add_to_server", "collect", "heartbeat_payload", "meets",
           "newest_by_code", "record_heartbeat", "sign", "summarize", "verify", "vouched"]
