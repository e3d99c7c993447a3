"""The node's SQLite mailbox: one database wrapper, one small module per concern.

All SQL of the node lives in this package (a test enforces it); the layers above call
these functions and get typed rows back. Writes take the transaction they join
(`Database.transaction`), reads take the `Database`.

- `database`  the writer connection, its lock, transactions (group commit) and their commit hooks; reads
- `readers`   the bounded pool of read-only connections that reads outside a transaction use
- `schema`    numbered migrations
- `custody`   `received`: what this node took custody of, and the receipt it gave
- `inbox`     `inbox`, `inbox_envelope`: mail addressed to this agency
- `outbox`    `outbox`, `outbox_envelope`: mail waiting for (or past) hand-over to a next hop
- `peers`     `peer_state`: retry state per next hop
- `documents` `docs`: this node's sends, grouping their envelopes (sender side)
- `progress`  `doc_progress`: where each received document stands (recipient side)
- `statuses`  `status_in`, `status_out`: statuses returned to us, and reported by us
- `registry`  `registry`, `odd_codes`: registered children
- `stats`     counters, own and reported by children (`subtree_stats`)
- `audit`     the append-only log
- `backup`    a consistent copy of a live mailbox (SQLite online backup), and what a copy holds
"""
from .database import Database, StoreError

__all__ = ["Database", "StoreError"]
