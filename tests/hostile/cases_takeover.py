"""Taking over a predecessor's mailbox (Admin.Takeover, `lienthong takeover`; docs/restructuring.md, "History
follows") from backups an attacker made or edited: unsigned, signed by another agency's key or another CA,
changed after signing, of an agency no succession retires into the victim, oversized, not drained, with another
mailbox's envelopes smuggled in, a database that is no database, a device for a file, a seal key that is no key;
and over the network (Registry.HandOver): from an agency that is no predecessor, oversized, out of order, another
agency's backup. The victim D holds one succession into itself (world set-up: the unused commune PRED retired into D), so the
checks past the predecessor's are reached; every refusal writes nothing (held, takeovers, inbox, outbox)."""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import os

from node import backup, envelope
from node.pb import admin_pb2 as apb
from node.pb import envelope_pb2 as pb
from node.pb import registry_pb2 as rpb
from node.store import backup as backup_store
from node.store import inbox, outbox
from node.store.database import Database

from takeover_backups import members, write

from .core import call, case
from .world import C1, D, M, P, PRED, Identity, foreign_identity, issue

TAKEOVER = "Admin.Takeover at D"


def predecessor(s) -> Identity:
    """A certificate of the world's CA for PRED, the commune retired into D, as its operator holds it."""
    if "pred" not in s.w.ids:
        s.w.ids["pred"] = issue(s.w.ca_dir, s.w.root / "takeover-keys" / PRED, PRED)
    return s.w.ids["pred"]


def made(s, name: str, code: str, signer, *, fill=None, database: bytes | None = None, sign: bool = True,
         edit=lambda m: m) -> str:
    """A backup of `code`'s mailbox as `signer` would sign it (its certificate in the manifest): a real mailbox,
    `fill`ed with rows, or `database` bytes; `edit` changes the manifest before it is signed."""
    d = s.w.root / "takeover" / name
    d.mkdir(parents=True)
    live = Database(d / "live.sqlite3")
    if fill is not None:
        with live.transaction() as tx:
            fill(tx)
    live.close()
    contents = backup_store.snapshot(d / "live.sqlite3", d / "copy.sqlite3")
    db = (d / "copy.sqlite3").read_bytes() if database is None else database
    manifest = backup.Manifest(backup.FORMAT, code, f"agency {code}", dt.datetime.now(dt.timezone.utc).isoformat(),
                               "test", contents.schema_version, contents.migrations, contents.rows,
                               hashlib.sha256(db).hexdigest(), len(db), base64.b64encode(signer.cert_der).decode())
    data = edit(manifest).to_json()
    parts = {backup.MANIFEST: data, backup.DATABASE: db}
    if sign:
        parts = {backup.MANIFEST: data, backup.SIGNATURE: backup.sign_manifest(signer, data), backup.DATABASE: db}
    return str(write(d / f"lienthong-{code}.tar", parts))


def takeover(s, path: str, seal_key: str = ""):
    admin = s.w.api(D).admin
    return call(admin.stub.Takeover, apb.TakeoverRequest(backup=path, seal_key=seal_key),
                metadata=admin._client.metadata)


@case("takeover", "a backup with no signature, taken over as a predecessor's", "FAILED_PRECONDITION",
      "BACKUP_UNSIGNED", via=TAKEOVER)
def _(s):
    return takeover(s, made(s, "unsigned", PRED, predecessor(s).signer, sign=False))


@case("takeover", "the insider's own key signing a backup that names the retired commune", "PERMISSION_DENIED",
      "BACKUP_FOREIGN_KEY", via=TAKEOVER)
def _(s):
    return takeover(s, made(s, "foreign-key", PRED, s.w.ids[M].signer))


@case("takeover", "a backup of the retired commune signed by a certificate of another CA", "PERMISSION_DENIED",
      "UNTRUSTED_CERT", via=TAKEOVER)
def _(s):
    return takeover(s, made(s, "foreign-ca", PRED, foreign_identity(s.w, PRED).signer))


@case("takeover", "a signed backup whose manifest was edited afterwards (its row counts)", "DATA_LOSS",
      "BACKUP_BAD_SIGNATURE", via=TAKEOVER)
def _(s):
    path = made(s, "edited", PRED, predecessor(s).signer)
    parts = members(path)
    parts[backup.MANIFEST] = parts[backup.MANIFEST].replace(b'"inbox": 0', b'"inbox": 1')
    return takeover(s, str(write(s.w.root / "takeover" / "edited" / "again.tar", parts)))


@case("takeover", "a signed backup whose database was changed afterwards", "DATA_LOSS", "BACKUP_BAD_SIGNATURE",
      via=TAKEOVER)
def _(s):
    path = made(s, "changed", PRED, predecessor(s).signer)
    parts = members(path)
    db = bytearray(parts[backup.DATABASE])
    db[-100] ^= 0xFF
    parts[backup.DATABASE] = bytes(db)
    return takeover(s, str(write(s.w.root / "takeover" / "changed" / "again.tar", parts)))


@case("takeover", "the insider's genuine backup: no succession retires it into the victim", "FAILED_PRECONDITION",
      "TAKEOVER_NOT_PREDECESSOR", via=TAKEOVER)
def _(s):
    return takeover(s, made(s, "insider", M, s.w.ids[M].signer))


@case("limits", "a predecessor's backup claiming 2,000,001 inbox rows", "INVALID_ARGUMENT", "TAKEOVER_TOO_LARGE",
      via=TAKEOVER)
def _(s):
    return takeover(s, made(s, "rows", PRED, predecessor(s).signer,
                            edit=lambda m: dataclasses.replace(m, rows={**m.rows, "inbox": 2_000_001})))


@case("takeover", "a predecessor's backup still holding an envelope waiting to leave", "FAILED_PRECONDITION",
      "TAKEOVER_NOT_DRAINED", via=TAKEOVER)
def _(s):
    signer = predecessor(s).signer

    def queued(tx):
        header, raw = envelope.seal(signer, C1, pb.Payload(document=pb.Document(subject="chưa đi")), lifetime_s=60)
        outbox.enqueue_in(tx, header, raw, D, "chưa đi", header.created_ms)
    return takeover(s, made(s, "queued", PRED, signer, fill=queued))


@case("takeover", "another agency's document smuggled into a predecessor's inbox", "INVALID_ARGUMENT", "MALFORMED",
      via=TAKEOVER)
def _(s):
    def smuggled(tx):  # addressed to C1, not to the predecessor
        header, raw = envelope.seal(s.w.ids[M].signer, C1, pb.Payload(document=pb.Document(subject="của C1")),
                                    lifetime_s=60)
        inbox.add_in(tx, header, subject="của C1", now_ms=header.created_ms, envelope=raw)
    return takeover(s, made(s, "smuggled", PRED, predecessor(s).signer, fill=smuggled))


@case("takeover", "a signed backup whose database is 64 KB of random bytes", "INVALID_ARGUMENT", "MALFORMED",
      via=TAKEOVER)
def _(s):
    return takeover(s, made(s, "random", PRED, predecessor(s).signer, database=os.urandom(64 << 10),
                            edit=lambda m: dataclasses.replace(m, rows={})))


@case("takeover", "a device (/dev/zero) given as the backup, which would be read for ever", "INVALID_ARGUMENT",
      "INVALID_REQUEST", via=TAKEOVER)
def _(s):
    return takeover(s, "/dev/zero")


@case("limits", "a predecessor's seal key that is 1 MB of random bytes", "INVALID_ARGUMENT", "TAKEOVER_SEAL_KEY",
      via=TAKEOVER)
def _(s):
    key = s.w.root / "takeover" / "seal.key"
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_bytes(os.urandom(1 << 20))
    return takeover(s, made(s, "seal-key", PRED, predecessor(s).signer), str(key))



@case("limits", "a predecessor's genuine signed backup padded with 2,000 empty members", "INVALID_ARGUMENT",
      "MALFORMED", via=TAKEOVER)
def _(s):
    """tarfile reads every member's header before it finds one: millions of empty members (a hand-over may be
    8 GiB of them) would be that many objects in memory before any signature is checked (backup.MAX_MEMBERS)."""
    import io
    import tarfile
    path = made(s, "padded", PRED, predecessor(s).signer)
    with tarfile.open(path, mode="a") as tar:
        for i in range(2000):
            tar.addfile(tarfile.TarInfo(f"pad-{i}"), io.BytesIO(b""))
    return takeover(s, path)


@case("takeover", "a predecessor's backup signed with a key its CA revoked as compromised", "PERMISSION_DENIED",
      "TAKEOVER_REVOKED", via=TAKEOVER, prepares=True)
def _(s):
    """Whoever held a key revoked for key_compromise could have made the backup: only a retired node's
    revocation (cessation_of_operation, superseded) lets its signature stand. A second certificate of the
    retired commune, so that the other cases keep theirs."""
    from node.identity import revocation
    from node.pb import registry_pb2 as rpb
    stolen = issue(s.w.ca_dir, s.w.root / "takeover-keys" / "stolen", PRED)
    path = made(s, "stolen-key", PRED, stolen.signer)
    revocation.revoke(s.w.ca_dir, s.w.root / "takeover-keys" / "stolen" / "node.pem", "key_compromise")
    pushed = s.w.registry(P, at=D).PushCrl(rpb.CrlPush(crl_der=revocation.make_crl(s.w.ca_dir).read_bytes()),
                                           timeout=10)
    assert pushed.crl_number >= 1
    s.begin()
    return takeover(s, path)


# ---- handed over by a peer (Registry.HandOver: lienthong retire --hand-over) ------------------------------

HAND_OVER = "Registry.HandOver, {} → D"


def hand_over(s, who, **chunk):
    chunk.setdefault("backup_sha256", "0" * 64)
    return call(s.w.registry(who, at=D).HandOver, rpb.HandOverChunk(**chunk))


@case("takeover", "the insider handing D a mailbox, though no succession retires it into D", "FAILED_PRECONDITION",
      "TAKEOVER_NOT_PREDECESSOR", via=HAND_OVER.format("M"))
def _(s):
    return hand_over(s, M, total=10, data=b"x" * 10)


@case("limits", "the retired commune announcing a 20 GB hand-over", "INVALID_ARGUMENT", "TAKEOVER_TOO_LARGE",
      via=HAND_OVER.format("PRED"))
def _(s):
    return hand_over(s, predecessor(s), total=20 << 30, data=b"x")


@case("limits", "the retired commune handing over a 2 MiB chunk", "INVALID_ARGUMENT", "TAKEOVER_TOO_LARGE",
      via=HAND_OVER.format("PRED"))
def _(s):
    return hand_over(s, predecessor(s), total=4 << 20, data=b"x" * (2 << 20))


@case("takeover", "a hand-over chunk at an offset of a transfer never started", "INVALID_ARGUMENT",
      "INVALID_REQUEST", via=HAND_OVER.format("PRED"))
def _(s):
    return hand_over(s, predecessor(s), total=100, offset=50, data=b"x" * 50)


@case("takeover", "the retired commune handing over the insider's genuine backup as its own", "FAILED_PRECONDITION",
      "TAKEOVER_NOT_PREDECESSOR", via=HAND_OVER.format("PRED"))
def _(s):
    data = open(made(s, "handed-insider", M, s.w.ids[M].signer), "rb").read()
    seen = hand_over(s, predecessor(s), backup_sha256=hashlib.sha256(data).hexdigest(), total=len(data), data=data)
    assert f"{PRED} handed over a backup of {M}" in seen.detail, seen.detail  # refused as not its own, first
    return seen
