"""Numbered schema migrations. Append new ones; never edit one that a released version applied."""
from __future__ import annotations

import datetime as dt
import sqlite3

import sqlite_utils
from sqlite_utils import Migrations

MIGRATIONS = Migrations("lienthong")
MIGRATIONS_TABLE = "_sqlite_migrations"  # sqlite-utils' record of what was applied (its format, kept)


def migrate(db: sqlite_utils.Database, *, stop_before: str | None = None) -> list[str]:
    """Apply the pending migrations, all in one transaction, and record them as sqlite-utils does; the names
    applied.

    sqlite-utils commits each migration on its own (one fsync each, its record written through table
    introspection), and every ALTER TABLE re-reads the whole schema: on a fresh mailbox that was most of
    a node's build time, which a host starting a thousand agencies pays a thousand times. Here it is one
    commit; a failing migration rolls back every pending one, so the mailbox stays at the version it had
    (never half-way). A fresh mailbox after the first of this process gets the schema the first one's
    replay produced, as one script (`_FreshSchema`): the same objects, without the replay.
    `stop_before`: apply only the migrations before that name (tests of a migration over older rows)."""
    with db.atomic():  # DDL is transactional in SQLite: all of it, or none
        fresh = stop_before is None and _empty(db.conn)
        script = _FreshSchema.script if _FreshSchema.names == _names() else None
        if fresh and script is not None:
            for sql in script:
                db.conn.execute(sql)
            done = [m.name for m in MIGRATIONS.pending(db)]
        else:
            MIGRATIONS.ensure_migrations_table(db)
            done = []
            for migration in MIGRATIONS.pending(db):
                if migration.name == stop_before:
                    break
                migration.fn(db)
                done.append(migration.name)
            if fresh:
                _FreshSchema.keep(db.conn)
        now = str(dt.datetime.now(dt.timezone.utc))
        db.conn.executemany(f"INSERT INTO {MIGRATIONS_TABLE} (migration_set, name, applied_at) VALUES (?, ?, ?)",
                            [(MIGRATIONS.name, name, now) for name in done])
    return done


def schema_of(conn: sqlite3.Connection) -> list[str]:
    """The statements that make this database's tables, indexes and triggers, in the order they were made
    (SQLite's own objects and automatic indexes left out: they come with their tables)."""
    return [r[0] for r in conn.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]


def _empty(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0


class _FreshSchema:
    """The schema a full replay of the migrations made on an empty mailbox, kept to make the next one.

    Taken from this process's own replay (never from a file that could fall behind the migrations), and
    only when the replay left every table empty: a migration that seeds rows is replayed each time."""

    script: list[str] | None = None
    names: tuple[str, ...] = ()  # the migrations the script stands for: used only while they are the list

    @classmethod
    def keep(cls, conn: sqlite3.Connection) -> None:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != ?",
            (MIGRATIONS_TABLE,))]
        if any(conn.execute(f'SELECT 1 FROM "{t}" LIMIT 1').fetchone() for t in tables):
            return
        cls.script, cls.names = schema_of(conn), _names()


def _names() -> tuple[str, ...]:
    return tuple(m.name for m in MIGRATIONS._migrations)


@MIGRATIONS(name="0001_mailbox")
def m0001_mailbox(db) -> None:
    for sql in (
        # Custody record: one row per message id this node ever accepted, with the
        # receipt it returned, so a duplicate gets the same receipt back.
        """CREATE TABLE received (
            message_id TEXT PRIMARY KEY,
            envelope_sha256 BLOB NOT NULL,
            receipt BLOB NOT NULL,
            from_peer TEXT,
            received_ms INTEGER NOT NULL)""",
        # Envelopes addressed to this node's agency.
        """CREATE TABLE inbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id TEXT NOT NULL UNIQUE,
            sender TEXT NOT NULL,
            kind INTEGER NOT NULL,
            priority INTEGER NOT NULL,
            subject TEXT NOT NULL DEFAULT '',
            received_ms INTEGER NOT NULL,
            acked_ms INTEGER)""",
        # Envelope bytes live apart from the rows whose state changes, so an update
        # does not rewrite a document-sized record.
        "CREATE TABLE inbox_envelope (message_id TEXT PRIMARY KEY, raw BLOB NOT NULL)",
        # Envelopes this node must hand to a next hop: its own, and relayed ones.
        """CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id TEXT NOT NULL UNIQUE,
            sender TEXT NOT NULL,
            recipient TEXT NOT NULL,
            next_hop TEXT NOT NULL,
            kind INTEGER NOT NULL,
            priority INTEGER NOT NULL,
            subject TEXT NOT NULL DEFAULT '',
            origin TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            created_ms INTEGER NOT NULL,
            expires_ms INTEGER NOT NULL,
            delivered_ms INTEGER,
            reason TEXT,
            receipt BLOB)""",
        "CREATE TABLE outbox_envelope (message_id TEXT PRIMARY KEY, raw BLOB NOT NULL)",
        "CREATE INDEX outbox_pending ON outbox(next_hop, priority DESC, seq) WHERE state = 'pending'",
        "CREATE INDEX outbox_expiry ON outbox(expires_ms) WHERE state = 'pending'",
        # Retry state per next hop lives here, not in memory, so it survives restarts.
        """CREATE TABLE peer_state (
            code TEXT PRIMARY KEY,
            failures INTEGER NOT NULL DEFAULT 0,
            next_attempt_ms INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            last_success_ms INTEGER)""",
        # What was sent, received and rejected; rows can be added, never changed.
        """CREATE TABLE audit (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            time_ms INTEGER NOT NULL,
            event TEXT NOT NULL,
            message_id TEXT,
            peer TEXT,
            detail TEXT NOT NULL DEFAULT '')""",
        """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
           BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END""",
        """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
           BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END""",
    ):
        db.execute(sql)


@MIGRATIONS(name="0002_registry")
def m0002_registry(db) -> None:
    for sql in (
        # Children registered with this node: their own signed record, and liveness.
        """CREATE TABLE registry (
            code TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            level INTEGER NOT NULL,
            endpoint TEXT NOT NULL,
            record BLOB NOT NULL,
            signature BLOB NOT NULL,
            registered_ms INTEGER NOT NULL,
            last_seen_ms INTEGER NOT NULL)""",
        # Codes outside the QCVN 102 form somewhere in our subtree, and their parents,
        # reported up on heartbeats so every ancestor can route to them.
        """CREATE TABLE odd_codes (
            code TEXT PRIMARY KEY,
            parent TEXT NOT NULL,
            via TEXT NOT NULL)""",
    ):
        db.execute(sql)


@MIGRATIONS(name="0003_documents")
def m0003_documents(db) -> None:
    for sql in (
        # One row per send: groups its envelopes (one per recipient) for tracking and changes.
        """CREATE TABLE docs (
            doc_id TEXT PRIMARY KEY,
            created_ms INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            subject TEXT NOT NULL DEFAULT '',
            document_id TEXT NOT NULL DEFAULT '',
            business_doc_type INTEGER NOT NULL DEFAULT 0,
            ref_doc_id TEXT)""",
        "ALTER TABLE outbox ADD COLUMN doc_id TEXT",
        "ALTER TABLE inbox ADD COLUMN ref_message_id TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE inbox ADD COLUMN business_doc_type INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX outbox_doc ON outbox(doc_id)",
        # Sender's side: statuses recipients returned on our documents.
        """CREATE TABLE status_in (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            status_message_id TEXT NOT NULL UNIQUE,
            doc_message_id TEXT NOT NULL,
            recipient TEXT NOT NULL,
            status_code TEXT NOT NULL,
            issued_ms INTEGER NOT NULL,
            status BLOB NOT NULL,
            received_ms INTEGER NOT NULL)""",
        "CREATE INDEX status_in_doc ON status_in(doc_message_id, issued_ms)",
        # Recipient's side: where each received document stands.
        """CREATE TABLE doc_progress (
            message_id TEXT PRIMARY KEY,
            sender TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT '',
            pending_request TEXT,
            state TEXT NOT NULL DEFAULT 'active',
            changed_by TEXT)""",
        """CREATE TABLE status_out (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            doc_message_id TEXT NOT NULL,
            status_code TEXT NOT NULL,
            status_message_id TEXT NOT NULL UNIQUE,
            issued_ms INTEGER NOT NULL)""",
        "CREATE INDEX status_out_doc ON status_out(doc_message_id)",
    ):
        db.execute(sql)


@MIGRATIONS(name="0004_stats")
def m0004_stats(db) -> None:
    for sql in (
        # Counters children reported on their heartbeats: one row per agency in each child's
        # subtree (the child included), replaced as a whole on every heartbeat from that child.
        """CREATE TABLE subtree_stats (
            via_child TEXT NOT NULL,
            code TEXT NOT NULL,
            as_of_ms INTEGER NOT NULL,
            stats BLOB NOT NULL,
            received_ms INTEGER NOT NULL,
            PRIMARY KEY (via_child, code))""",
        # Indexes that keep the own-counter queries (node/store/stats.py) off full table scans.
        "CREATE INDEX outbox_local_kind ON outbox(kind, origin) WHERE origin = 'local'",
        "CREATE INDEX inbox_kind ON inbox(kind)",
        "CREATE INDEX docs_kind ON docs(kind)",
        "CREATE INDEX status_out_doc_code ON status_out(doc_message_id, status_code)",
        "CREATE INDEX status_out_code ON status_out(status_code)",
    ):
        db.execute(sql)


@MIGRATIONS(name="0005_received_document_id")
def m0005_received_document_id(db) -> None:
    # edXML statuses name the document by DocumentId: find it without parsing the mailbox
    db.execute("ALTER TABLE doc_progress ADD COLUMN document_id TEXT NOT NULL DEFAULT ''")
    db.execute("CREATE INDEX doc_progress_document_id ON doc_progress(document_id)")


@MIGRATIONS(name="0006_outbox_ref")
def m0006_outbox_ref(db) -> None:
    # what an envelope refers to (a revoke its document, a status the document): a hop with two
    # batches in flight keeps such an envelope out of the second while its reference is in the first
    db.execute("ALTER TABLE outbox ADD COLUMN ref_message_id TEXT NOT NULL DEFAULT ''")


@MIGRATIONS(name="0007_signed_subtree_stats")
def m0007_signed_subtree_stats(db) -> None:
    # subtree_stats.stats now holds each agency's signed counters (SignedStats), not bare AgencyStats:
    # unsigned rows are dropped; children send signed ones on their next heartbeat
    db.execute("DELETE FROM subtree_stats")


@MIGRATIONS(name="0008_held_hops")
def m0008_held_hops(db) -> None:
    # an operator may hold a next hop (lienthong hold): nothing is sent to it until released, across restarts
    db.execute("ALTER TABLE peer_state ADD COLUMN held INTEGER NOT NULL DEFAULT 0")


@MIGRATIONS(name="0009_client_keys")
def m0009_client_keys(db) -> None:
    # idempotency keys of the local API (node/store/client_keys.py): the first answer to a request, written
    # in the transaction that committed what it did, so a retry after a lost answer gets it back
    for sql in (
        """CREATE TABLE client_keys (
            client_key TEXT PRIMARY KEY,
            method TEXT NOT NULL,
            request_sha256 BLOB NOT NULL,
            response BLOB NOT NULL,
            created_ms INTEGER NOT NULL,
            expires_ms INTEGER NOT NULL)""",
        "CREATE INDEX client_keys_expires ON client_keys(expires_ms)",
    ):
        db.execute(sql)


@MIGRATIONS(name="0010_audit_chain")
def m0010_audit_chain(db) -> None:
    """The audit log becomes a hash chain (node/audit/chain.py); rows written before are chained here, in
    their seq order, so the whole log is covered from now on (a genesis row at the migration would leave
    them outside it: editable without a trace). What they said before this migration rests on the
    append-only triggers they were written under; from here on an edit shows."""
    from ..audit.chain import GENESIS, chain
    for sql in (
        """CREATE TABLE audit_chain (
            seq INTEGER PRIMARY KEY,
            time_ms INTEGER NOT NULL,
            event TEXT NOT NULL,
            message_id TEXT NOT NULL DEFAULT '',
            peer TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT '',
            prev_hash BLOB NOT NULL,
            hash BLOB NOT NULL)""",
    ):
        db.execute(sql)
    conn = db.conn
    old = conn.execute("SELECT time_ms, event, coalesce(message_id, ''), coalesce(peer, ''), coalesce(detail, '')"
                       " FROM audit ORDER BY seq")
    # renumbered from 1 in their order: seqs AUTOINCREMENT gave are gapless anyway, and the chain's check of
    # continuity then holds from its first row
    conn.executemany("INSERT INTO audit_chain (seq, time_ms, event, message_id, peer, detail, prev_hash, hash)"
                     " VALUES (?,?,?,?,?,?,?,?)", chain(old, 0, GENESIS))  # streamed: a long log is not held in memory
    for sql in (
        "DROP TABLE audit",  # its triggers go with it
        "ALTER TABLE audit_chain RENAME TO audit",
        """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
           BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END""",
        """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
           BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END""",
        # this node's signed checkpoints of the chain head (node/audit/checkpoints.py); parent_ms: when its
        # parent took it
        """CREATE TABLE audit_checkpoint (
            seq INTEGER PRIMARY KEY,
            head BLOB NOT NULL,
            time_ms INTEGER NOT NULL,
            signed BLOB NOT NULL,
            parent_ms INTEGER)""",
        # children's signed checkpoints, kept by their parent: one row per (child, seq), never replaced, so a
        # second checkpoint at a seq that says another head is caught (the newest 10,000 per child are kept)
        """CREATE TABLE child_checkpoint (
            code TEXT NOT NULL,
            seq INTEGER NOT NULL,
            head BLOB NOT NULL,
            time_ms INTEGER NOT NULL,
            signed BLOB NOT NULL,
            received_ms INTEGER NOT NULL,
            PRIMARY KEY (code, seq))""",
    ):
        db.execute(sql)


@MIGRATIONS(name="0011_parked")
def m0011_parked(db) -> None:
    # relayed mail for a code below us by the code rule whose node has not registered yet ("parked"): who
    # handed it over (a per-peer quota counts it) and until when it may wait for a registration before
    # its sender is told (limits.park_for)
    for sql in (
        "ALTER TABLE outbox ADD COLUMN parked_by TEXT",
        "ALTER TABLE outbox ADD COLUMN park_until_ms INTEGER",
        "CREATE INDEX outbox_parked ON outbox(parked_by) WHERE parked_by IS NOT NULL AND state = 'pending'",
    ):
        db.execute(sql)


@MIGRATIONS(name="0012_not_before")
def m0012_not_before(db) -> None:
    # an envelope of ours kept home until its recipient's seal key can be had (node.exchange.late_seal): not
    # claimed before this time, so it never holds its hop back nor is asked for again at every attempt
    db.execute("ALTER TABLE outbox ADD COLUMN not_before_ms INTEGER")


@MIGRATIONS(name="0013_registry_previous_cert")
def m0013_registry_previous_cert(db) -> None:
    # the certificate a child's registration renewed (node.registry.pins): its queued mail, signed and marked
    # before the renewal, still passes; NULL after a first registration or when the old one was revoked
    db.execute("ALTER TABLE registry ADD COLUMN previous_cert BLOB")


@MIGRATIONS(name="0014_outbox_held")
def m0014_outbox_held(db) -> None:
    # an operator may hold one message (lienthong queue hold): not sent until released, across restarts;
    # it still expires. The queue is listed in seq order (Admin.ListQueue) without reading the sent register
    for sql in (
        "ALTER TABLE outbox ADD COLUMN held INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX outbox_queued ON outbox(seq) WHERE state = 'pending'",
    ):
        db.execute(sql)


@MIGRATIONS(name="0015_audit_restore")
def m0015_audit_restore(db) -> None:
    """A restore from a backup is declared, not hidden (docs/audit.md). The node's own checkpoints say
    which of them is a restore checkpoint (restored_from: the backup's last seq). A parent keeps its
    children's checkpoints per branch: a restore starts a new one (the seqs after the backup's head are
    written again), the history given up stays in its own branch, and child_restore records each restore
    with the latest checkpoint the parent held of what it gave up."""
    for sql in (
        "ALTER TABLE audit_checkpoint ADD COLUMN restored_from INTEGER",
        """CREATE TABLE child_checkpoint_branched (
            code TEXT NOT NULL,
            branch INTEGER NOT NULL DEFAULT 0,
            seq INTEGER NOT NULL,
            head BLOB NOT NULL,
            time_ms INTEGER NOT NULL,
            signed BLOB NOT NULL,
            received_ms INTEGER NOT NULL,
            PRIMARY KEY (code, branch, seq))""",
        "INSERT INTO child_checkpoint_branched (code, branch, seq, head, time_ms, signed, received_ms)"
        " SELECT code, 0, seq, head, time_ms, signed, received_ms FROM child_checkpoint",
        "DROP TABLE child_checkpoint",
        "ALTER TABLE child_checkpoint_branched RENAME TO child_checkpoint",
        """CREATE TABLE child_restore (
            code TEXT NOT NULL,
            branch INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            head BLOB NOT NULL,
            signed BLOB NOT NULL,
            superseded BLOB,
            received_ms INTEGER NOT NULL,
            PRIMARY KEY (code, branch))""",
    ):
        db.execute(sql)


@MIGRATIONS(name="0016_waits_for_registration")
def m0016_waits_for_registration(db) -> None:
    # an envelope of ours whose recipient the tree places under a node it has not registered with (yet): where
    # it waits (that node, which parks it) and until when at most, so the sender sees it at once (issue 17);
    # the index finds a non-delivery notice about one of them without a scan of the mailbox (and the updates
    # of a document a revocation revokes too)
    for sql in (
        "ALTER TABLE outbox ADD COLUMN waits_at TEXT",
        "ALTER TABLE outbox ADD COLUMN waits_until_ms INTEGER",
        "CREATE INDEX inbox_ref ON inbox(ref_message_id) WHERE ref_message_id != ''",
        # recipient side: what a change still pending replaced, put back if the agency refuses it (16)
        "ALTER TABLE doc_progress ADD COLUMN state_before TEXT",
        "ALTER TABLE doc_progress ADD COLUMN changed_by_before TEXT",
        "CREATE INDEX doc_progress_changed_by ON doc_progress(changed_by) WHERE changed_by IS NOT NULL",
    ):
        db.execute(sql)


@MIGRATIONS(name="0017_envelope_retry")
def m0017_envelope_retry(db) -> None:
    # an envelope a next hop refused for now on its own account (PARK_FULL: its origin's quota there is full):
    # not claimed before this time, on a backoff of its own, while the hop's other mail goes. Apart from
    # not_before_ms because a neighbour coming back (a heartbeat) must not undo it: the refusal was not the link's
    db.execute("ALTER TABLE outbox ADD COLUMN retry_after_ms INTEGER")


@MIGRATIONS(name="0020_client_keys_per_client")
def m0020_client_keys_per_client(db) -> None:
    # one key space per client program of the local API (api.tokens): the same client_key from two programs
    # names two requests, so one program can neither replay nor block another's. Keys stored before belong
    # to the one client there was, "default" (api.token)
    for sql in (
        """CREATE TABLE client_keys_by_client (
            client TEXT NOT NULL,
            client_key TEXT NOT NULL,
            method TEXT NOT NULL,
            request_sha256 BLOB NOT NULL,
            response BLOB NOT NULL,
            created_ms INTEGER NOT NULL,
            expires_ms INTEGER NOT NULL,
            PRIMARY KEY (client, client_key))""",
        "INSERT INTO client_keys_by_client SELECT 'default', client_key, method, request_sha256, response, created_ms,"
        " expires_ms FROM client_keys",
        "DROP TABLE client_keys",
        "ALTER TABLE client_keys_by_client RENAME TO client_keys",
        "CREATE INDEX client_keys_expires ON client_keys(expires_ms)",
    ):
        db.execute(sql)


@MIGRATIONS(name="0035_successions")
def m0035_successions(db) -> None:
    # the succession lists this node holds, one per issuer (the newest: node.registry.successions), kept so a
    # restart neither forgets a retired code nor takes an older list back; and, on an envelope of ours
    # re-addressed to a retired agency's successor, the code it was first addressed to (Track shows it)
    for sql in (
        """CREATE TABLE succession_lists (
            issuer TEXT PRIMARY KEY,
            number INTEGER NOT NULL,
            signed BLOB NOT NULL,
            taken_ms INTEGER NOT NULL)""",
        "ALTER TABLE outbox ADD COLUMN successor_of TEXT",
        # a document of ours a relay refused for good because its recipient is retired (RECIPIENT_RETIRED):
        # the message id of the envelope that took it to the successor, so it is sent there once
        "ALTER TABLE outbox ADD COLUMN followed_by TEXT",
    ):
        db.execute(sql)


@MIGRATIONS(name="0050_retirement")
def m0050_retirement(db) -> None:
    # this node is retiring into its successor (lienthong retire): at most one row, kept so a restart still
    # refuses new documents to send (node.store.retirement)
    db.execute("""CREATE TABLE retirement (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        successor TEXT NOT NULL,
        started_ms INTEGER NOT NULL)""")


@MIGRATIONS(name="0051_takeover")
def m0051_takeover(db) -> None:
    # the successor holds its predecessors' mailboxes (lienthong takeover: node.takeover): each imported row keeps
    # the predecessor's code (`held_for`: the agency it was received by or sent for); per imported message, the
    # receipt the predecessor signed when it took custody and, for one sealed to the predecessor, its content key
    # wrapped for this node's seal key (the envelope's own bytes, signed by their sender, are kept unchanged);
    # one row per takeover done (what it took, from which backup)
    for sql in (
        "ALTER TABLE inbox ADD COLUMN held_for TEXT",
        "ALTER TABLE outbox ADD COLUMN held_for TEXT",
        "ALTER TABLE docs ADD COLUMN held_for TEXT",
        """CREATE TABLE held (
            message_id TEXT PRIMARY KEY,
            held_for TEXT NOT NULL,
            receipt BLOB,
            content_wrap BLOB)""",
        """CREATE TABLE takeovers (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            predecessor TEXT NOT NULL,
            backup_sha256 TEXT NOT NULL,
            taken_ms INTEGER NOT NULL,
            inbox INTEGER NOT NULL,
            sent INTEGER NOT NULL,
            resealed INTEGER NOT NULL)""",
    ):
        db.execute(sql)


@MIGRATIONS(name="0055_answered_by")
def m0055_answered_by(db) -> None:
    # a status a retired recipient's successor sent about a document of ours (docs/restructuring.md, "History
    # follows"): filed under the recipient it was sent to, with the successor that answered (Track shows it)
    db.execute("ALTER TABLE status_in ADD COLUMN answered_by TEXT NOT NULL DEFAULT ''")


@MIGRATIONS(name="0056_held_statuses")
def m0056_held_statuses(db) -> None:
    # the statuses a takeover imported keep the predecessor's code too, so that this agency's own statistics
    # count what it did, not its predecessors' history again (which stays counted under their codes): a status
    # imported before this migration is one whose own envelope was imported (held_for set on it). The partial
    # indexes count held rows (none unless a takeover happened), to be subtracted from the totals; every count
    # stays on an index alone (tests/stats/test_stats.py)
    for sql in (
        "ALTER TABLE status_in ADD COLUMN held_for TEXT",
        "ALTER TABLE status_out ADD COLUMN held_for TEXT",
        "UPDATE status_in SET held_for = (SELECT i.held_for FROM inbox i"
        " WHERE i.message_id = status_in.status_message_id) WHERE status_message_id IN (SELECT message_id FROM inbox WHERE held_for IS NOT NULL)",
        "UPDATE status_out SET held_for = (SELECT o.held_for FROM outbox o"
        " WHERE o.message_id = status_out.status_message_id)"
        " WHERE status_message_id IN (SELECT message_id FROM outbox WHERE held_for IS NOT NULL)",
        "CREATE INDEX docs_held ON docs(kind, held_for) WHERE held_for IS NOT NULL",
        "CREATE INDEX inbox_held ON inbox(kind, held_for) WHERE held_for IS NOT NULL",
        "CREATE INDEX outbox_held ON outbox(kind, origin, held_for) WHERE held_for IS NOT NULL",
        "CREATE INDEX status_in_held ON status_in(held_for) WHERE held_for IS NOT NULL",
        "CREATE INDEX status_out_held ON status_out(held_for) WHERE held_for IS NOT NULL",
        # the distinct codes an agency returned itself, still read off this index alone
        "DROP INDEX status_out_code",
        "CREATE INDEX status_out_code ON status_out(status_code, held_for)",
    ):
        db.execute(sql)
