"""`lienthong`: run a node, issue identities, and talk to a running node's local API."""
from __future__ import annotations

import argparse
import json
import mimetypes
import sys
from datetime import datetime, timezone
from pathlib import Path

import grpc
from google.protobuf import json_format

from . import cli_stats
from . import version as _version
from .client import PagingStuck
from .config import ConfigError
from .config_location import CONFIG_ENV, DEFAULT_CONFIG, HELP as CONFIG_HELP, NoConfig, find_config
from .progress import Progress
from .envelope import is_message_id
from .errors import Rejected
from .pb import envelope_pb2 as pb
from .terminal import shown, shown_json

KIND_NAMES = {pb.DOCUMENT: "document", pb.STATUS: "status", pb.NOTICE: "notice"}


class CliError(Exception):
    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if ms else "-"


def _print_json_list(messages) -> int:
    print(shown_json(json.dumps([json_format.MessageToDict(m) for m in messages], ensure_ascii=False, indent=1)))
    return 0


AGENCY_HELP = ("on a host serving several agencies (docs/hosting.md): the agency whose settings (data "
               "directory, token) the command uses; default: the only one")


def _settings(args):
    """The settings of the agency the command is about: the config's only one, or --agency's on a host."""
    from .host.config import settings_for
    return settings_for(args.config, getattr(args, "agency", None))


def _client(args, timeout: float = 30.0):
    from .client import MailboxClient
    return MailboxClient.for_settings(_settings(args), timeout)


LONG_CALL_S = 3600.0  # a takeover or a hand-over of a large mailbox: the node checks and imports it all in the call


# ---- identity -------------------------------------------------------------------

def cmd_ca_init(args) -> int:
    from .identity import certs
    try:
        key, cert = certs.init_ca(Path(args.dir), args.name, force=args.force)
    except FileExistsError as e:
        raise CliError(str(e), 2) from None
    print(f"CA key  {key} (mode 0600)\nCA cert {cert}")
    return 0


def cmd_ca_sign(args) -> int:
    from .identity import certs
    csr = Path(args.csr)
    out = Path(args.out) if args.out else csr.with_suffix(".pem")
    try:
        code = certs.sign_request_file(csr, Path(args.ca), out, days=args.days, force=args.force)
    except (FileExistsError, FileNotFoundError, ValueError) as e:
        raise CliError(str(e), 2) from None
    print(f"cert {out} (for {code}, {args.days} days)")
    return 0


REVOCATION_REASONS = ("unspecified", "key_compromise", "affiliation_changed", "superseded", "cessation_of_operation")


def cmd_ca_revoke(args) -> int:
    from .identity import revocation
    try:
        serial = revocation.revoke(Path(args.ca), Path(args.cert), args.reason)
    except (FileNotFoundError, ValueError) as e:
        raise CliError(str(e), 2) from None
    print(f"revoked serial {serial:x} ({args.reason}); publish it with `lienthong ca crl --ca {args.ca}`")
    return 0


def cmd_ca_crl(args) -> int:
    from .identity import revocation
    try:
        path = revocation.make_crl(Path(args.ca), days=args.days)
    except (FileNotFoundError, ValueError) as e:
        raise CliError(str(e), 2) from None
    print(f"CRL {path} (valid {args.days} days)")
    return 0


def cmd_renew(args) -> int:
    from .identity import certs, renewal
    settings = _settings(args)
    try:
        if not args.install:
            p = renewal.start(settings, force=args.force)
            print(f"key  {p.key} (mode 0600)\ncsr  {p.csr}")
            if not args.ca:
                print(f"next: have the CA sign it into {p.cert} (`lienthong ca sign --ca CA {p.csr}`), "
                      f"then `lienthong renew --config {args.config} --install`")
                return 0
            certs.sign_request_file(p.csr, Path(args.ca), p.cert, force=True)
        key, cert = renewal.install(settings)
    except (renewal.RenewalError, FileNotFoundError, ValueError) as e:
        raise CliError(str(e), 2) from None
    prev_key, _ = renewal.previous_paths(settings)
    print(f"installed {key} and {cert}; the previous pair is kept as *.previous\n"
          f"restart the node (or send it SIGHUP): it registers the new certificate, co-signed by {prev_key}")
    return 0


def cmd_init(args) -> int:
    from .codes import CodeError, Hierarchy
    from .identity import certs
    try:
        Hierarchy({args.code: args.parent} if args.parent else None).validate(args.code)
    except CodeError as e:
        raise CliError(str(e), 2) from None
    try:
        files = certs.init_node(Path(args.dir), args.code, args.name, Path(args.ca) if args.ca else None,
                                force=args.force)
    except (FileNotFoundError, FileExistsError) as e:
        raise CliError(str(e), 2) from None
    print(f"key  {files.key} (mode 0600)\nseal {files.seal_key} (mode 0600)\ncsr  {files.csr}")
    if files.cert:
        print(f"cert {files.cert}\nca   {files.ca}")
    return 0


# ---- node -----------------------------------------------------------------------

def cmd_run(args) -> int:
    from .host.config import load_host
    from .logs import configure
    config = load_host(args.config)
    if not config.several:  # today's node.yaml: the node is the whole process, as before
        from .runtime import run
        settings = config.agencies[0]
        configure(settings.node.code, settings.log_level, args.log_format)
        return run(settings)
    from .host.host import run as run_host
    configure("host", config.process.log_level, args.log_format)
    return run_host(config)


def cmd_check_config(args) -> int:
    """Everything `run` checks before it binds, without binding or taking the data directory; every error
    at once (exit 2). The parent's reachability only with --reach (exit 1 when it does not answer)."""
    from .check_config import check, parent_of, reach_parent
    checked = check(args.config)
    for e in checked.errors:
        print(f"lienthong: config error: {e}", file=sys.stderr)
    if checked.errors:
        if len(checked.errors) > 1:
            print(f"lienthong: {len(checked.errors)} errors in {args.config}", file=sys.stderr)
        return 2
    s = checked.settings
    if checked.agencies:  # a host file: each agency's files checked; --reach is per node.yaml
        print(f"{args.config}: OK — a host of {len(checked.agencies)} agencies: {', '.join(checked.agencies)}")
        return 0
    print(f"{args.config}: OK — node {checked.code} ({s.node.name}), data in {s.node.data_dir}")
    parent = parent_of(s)
    if not args.reach:
        if parent is not None:
            print(f"not checked: whether the parent {parent[0]} answers at {parent[1]} (--reach dials it; "
                  "`lienthong doctor` checks every peer of the running node)")
        return 0
    answers, said = reach_parent(s)
    print(said)
    return 0 if answers else 1


def _at_least_one(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of backups, 1 or more, got {text!r}")
    return n


def cmd_backup(args) -> int:
    if getattr(args, "all", False):
        return _backup_all(args)
    return _backup_one(args, _settings(args))


def _backup_all(args) -> int:
    """Every agency of the host into the directory --to (one file each); one failing does not stop the others."""
    to = Path(args.to)
    if not to.is_dir():
        raise CliError(f"--all: --to must be an existing directory (one backup per agency goes there): {to}")
    failed = []
    for s in _every_agency(args):
        print(f"== agency {s.node.code}")
        try:
            _backup_one(args, s)
        except CliError as e:
            print(f"backup of {s.node.code} failed: {e}")
            failed.append(s.node.code)
    if failed:
        raise CliError(f"{len(failed)} of the host's agencies not backed up: {', '.join(failed)}")
    return 0


def _backup_one(args, settings) -> int:
    from . import backup
    try:
        with Progress("backup") as progress:
            out, m, removed = backup.backup(settings, Path(args.to), keep=args.keep, progress=progress)
    except backup.BackupError as e:
        raise CliError(str(e)) from None
    rows = ", ".join(f"{t} {n}" for t, n in m.rows.items() if not t.startswith("_"))
    print(f"backup {out} of {m.node} at {m.created}: schema {m.schema_version}, {m.size} bytes, sha256 {m.sha256}\n"
          f"rows: {rows}")
    if args.keep and not removed:
        print(f"--keep {args.keep}: nothing removed ({args.keep} or fewer backups of {m.node} in {out.parent})")
    elif args.keep:
        print(f"--keep {args.keep}: removed {len(removed)} older backup{'' if len(removed) == 1 else 's'} of {m.node}:")
        for p in removed:
            print(f"removed {p}")
    return 0


def cmd_restore(args) -> int:
    from . import backup
    from .clock import SYSTEM
    from .identity.trust import TrustStore
    from .preflight import load_identity
    if getattr(args, "agency_file", None):
        from .host.config import agency_from_file
        if getattr(args, "agency", None):
            raise CliError("give --agency CODE or --agency-file FILE, not both")
        settings = agency_from_file(args.config, args.agency_file)
    else:
        settings = _settings(args)
    # the node's key signs the restore into the audit chain: a missing or wrong key stops it before anything
    signer = load_identity(settings, TrustStore.from_files(list(settings.tls.trust_anchors)), SYSTEM)
    try:
        with Progress("restore") as progress:
            r = backup.restore(settings, Path(args.source), signer, SYSTEM.now_ms(), progress=progress)
    except backup.BackupError as e:
        raise CliError(str(e)) from None
    except Rejected as refused:  # BACKUP_*: the reason first, so a script can tell them apart
        raise CliError(refused.public_text) from None
    m = r.manifest
    print(f"restored {args.source} ({m.node}, {m.created}, schema {m.schema_version}, signature and sha256 "
          f"verified) into {settings.node.data_dir}\n"
          f"audit: the backup holds the chain up to seq {r.backup_seq}; the restore is recorded at seq "
          f"{r.restore_seq}, signed by the node's key, and handed to the parent when the node starts "
          "(`lienthong audit verify` reports rows written after the backup as lost with the restore)\n"
          "start the node: envelopes the backup shows pending are sent again "
          "(a next hop that already has one answers with its stored receipt)")
    return 0


def cmd_doctor(args) -> int:
    from .doctor import diagnose
    if getattr(args, "all", False):
        return _doctor_all(args)
    report = diagnose(args.config, getattr(args, "agency", None))
    print(report.render())
    return 1 if report.problems else 0


def _doctor_all(args) -> int:
    """The host's health: every agency's report in turn, then one line per agency (exit 1 if any has a problem)."""
    from .doctor import diagnose
    summary = []
    for s in _every_agency(args):
        code = s.node.code
        report = diagnose(args.config, code)
        print(f"== agency {code} ({shown(s.node.name)})")
        print(report.render())
        summary.append((code, report.problems))
    print(f"== host {args.config}: {len(summary)} agencies")
    for code, problems in summary:
        print(f"{code}: {'ok' if not problems else f'{problems} problem' + ('' if problems == 1 else 's')}")
    return 1 if any(n for _, n in summary) else 0


def _every_agency(args) -> list:
    """--all: the settings of every agency the config's host serves (a node.yaml: its one agency)."""
    from .host.config import load_host
    if getattr(args, "agency", None):
        raise CliError("give --agency CODE or --all, not both")
    return list(load_host(args.config).agencies)


# ---- audit and evidence ---------------------------------------------------------------

EXIT_BROKEN = 3  # audit verify: the log was tampered with; verify-evidence: the bundle proves nothing


def cmd_audit_verify(args) -> int:
    if not getattr(args, "all", False):
        return _audit_verify_one(args, _settings(args))
    worst, lines = 0, []
    for s in _every_agency(args):
        print(f"== agency {s.node.code}")
        try:
            code = _audit_verify_one(args, s)
        except CliError as e:
            print(f"audit verify of {s.node.code}: {e}")
            code = 1
        lines.append(f"{s.node.code}: {'intact' if code == 0 else 'BROKEN' if code == EXIT_BROKEN else 'not verified'}")
        worst = max(worst, code)
    print(f"== host {args.config}: {len(lines)} agencies")
    print("\n".join(lines))
    return worst


def _audit_verify_one(args, s) -> int:
    from .audit import verify
    from .transport.grpc_peers import GrpcTransport, TlsMaterial
    from .identity import keys
    from .identity.trust import TrustStore
    from . import preflight
    from .runtime import Node
    mailbox = Path(s.node.data_dir) / preflight.MAILBOX_FILE
    if not mailbox.is_file():
        raise CliError(f"no mailbox at {mailbox}: nothing to verify")
    trust = TrustStore.from_files(list(s.tls.trust_anchors), crl=s.tls.crl)
    parent_code = Node._parent_code(s)
    parent = (parent_code, s.peer_address(parent_code)) if parent_code and s.peer_address(parent_code) else None
    transport = None
    if parent is not None and not args.offline:
        tls = TlsMaterial(key_pem=keys.key_pem(keys.load_private_key(Path(s.tls.key))),
                          cert_pem=Path(s.tls.cert).read_bytes(), anchors_pem=trust.anchors_pem,
                          insecure=s.tls.insecure_plaintext)
        transport = GrpcTransport(tls, s.messages.max_size)
    try:
        with Progress("audit verify") as progress:
            result = verify.verify(s, mailbox, trust, None if args.offline else parent, transport, progress=progress)
    except verify.NotChained as e:
        raise CliError(str(e)) from None
    finally:
        if transport is not None:
            transport.close()
    if args.offline and parent is not None:
        result.notes.insert(0, f"OFFLINE (--offline): parent {parent[0]}'s copy not asked for")
        result.offline = True
    print(result.render())
    return 0 if result.intact else EXIT_BROKEN


def cmd_evidence(args) -> int:
    from . import preflight
    from .clock import SYSTEM
    from .evidence import make
    from .identity import sealing
    from .identity.trust import TrustStore
    s = _settings(args)
    mailbox = Path(s.node.data_dir) / preflight.MAILBOX_FILE
    if not mailbox.is_file():
        raise CliError(f"no mailbox at {mailbox}")
    out = Path(args.out)
    if out.exists():
        raise CliError(f"--out {out}: exists (never overwritten)", 2)
    trust = TrustStore.from_files(list(s.tls.trust_anchors), crl=s.tls.crl)
    signer = preflight.load_identity(s, trust, SYSTEM)
    try:
        found = make.find(mailbox, args.doc)
    except make.EvidenceError as e:
        raise CliError(str(e), e.status) from None
    seal_key = None
    if s.seal_key_path.exists():  # statuses sealed to us: their content keys go in the bundle
        seal_key, _ = sealing.load_or_create(s.seal_key_path, create=False)
    data = make.make(found, signer, SYSTEM, [Path(s.tls.crl).read_bytes()] if s.tls.crl else [],
                     seal_key=seal_key, disclose_document=args.disclose)
    with open(out, "xb") as f:
        f.write(data)
    print(f"wrote {out} ({len(data)} bytes): {found.role} message {found.document.message_id}, "
          f"{sum(len(h.receipts) for h in [found.document, *found.statuses])} receipt(s), "
          f"{len(found.statuses)} status envelope(s); check it with `lienthong verify-evidence {out} --ca CA_CERT`")
    return 0


def cmd_verify_evidence(args) -> int:
    from .evidence import check
    from .identity import certs
    try:
        ca = certs.load_certs(Path(args.ca))
    except ValueError as e:
        raise CliError(f"--ca {args.ca}: {e}", 2) from None
    try:
        proof = check.check(Path(args.file).read_bytes(), ca)
    except check.Refused as e:
        print(f"REFUSED: {shown(str(e))}")
        return EXIT_BROKEN
    print(proof.render())
    return 0


# ---- local API ------------------------------------------------------------------

def cmd_send(args) -> int:
    doc = pb.Document(subject=args.subject, content=args.content or "", document_id=args.document_id or "")
    doc.other_info.priority = args.priority
    for path in args.attach or []:
        p = Path(path)
        if not p.is_file():
            raise CliError(f"--attach {path}: no such file", 2)
        doc.attachments.add(name=p.name, content_type=mimetypes.guess_type(p.name)[0] or "application/octet-stream",
                            data=p.read_bytes())
    resp = _client(args).send(doc, args.to, priority=args.priority, client_key=args.client_key or "",
                              require_registered=args.require_registered)
    print(f"document {shown(resp.doc_id)}")
    for e in resp.envelopes:
        waits = (f"  (not registered yet: waits at {shown(e.waits_at) or 'a relay'} until {_when(e.waits_until_ms)} UTC)"
                 if e.waits_until_ms else "")
        print(f"{shown(e.message_id)}  -> {shown(e.recipient)}{waits}")
    return 0


def cmd_inbox(args) -> int:
    entries = _client(args).inbox_all(only_new=args.new)
    if args.json:
        return _print_json_list(entries)
    print(f"{'MESSAGE ID':32}  {'KIND':8}  {'FROM':15}  {'RECEIVED (UTC)':19}  ACK  SUBJECT")
    for e in entries:
        print(f"{shown(e.message_id):32}  {KIND_NAMES.get(e.kind, '?'):8}  {shown(e.sender):15}  "
              f"{_when(e.received_ms):19}  {'yes' if e.acked else 'no ':3}  {shown(e.subject)}"
              + (f"  (received by {shown(e.held_for)}, held here)" if e.held_for else ""))
    return 0


def cmd_fetch(args) -> int:
    r = _client(args).fetch(args.message_id)
    if args.json:
        print(shown_json(json_format.MessageToJson(r, ensure_ascii=False)))
        return 0
    print(f"message   {shown(r.entry.message_id)} ({KIND_NAMES.get(r.entry.kind, '?')})")
    print(f"from      {shown(r.entry.sender)}  signature {'verified' if r.signature_verified else 'NOT VERIFIED'} "
          f"({shown(r.signer_subject)})")
    print("path      " + " -> ".join(f"{shown(h.code)}@{_when(h.time_ms)}" for h in r.path))
    if r.entry.held_for:
        print(f"held for  {shown(r.entry.held_for)}: received by it, taken over here (lienthong takeover)")
    body = r.payload.WhichOneof("body")
    if body != "document":
        print(shown_json(json_format.MessageToJson(r.payload, ensure_ascii=False)))
        return 0
    d = r.payload.document
    print(f"subject   {shown(d.subject)}\ndoc id    {shown(d.document_id)}")
    if d.content:
        print(f"content   {shown(d.content, keep_newlines=True)}")
    directory = Path(args.save_dir) if args.save_dir else None
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    failed = 0
    for i, a in enumerate(d.attachments):
        print(f"attached  {shown(a.name)} ({shown(a.content_type)}, {len(a.data)} bytes)")
        if directory is None:
            continue
        try:
            out = save_attachment(directory, a.name, a.data, i, used)
        except OSError as e:  # this one is not saved; the others still are
            failed += 1
            print(f"NOT SAVED {shown(a.name)}: {e.strerror or e}", file=sys.stderr)
            continue
        print(f"saved     {shown(str(out))}" + ("" if out.name == a.name else f" (renamed from {shown(a.name)})"))
    if failed:
        raise CliError(f"{failed} of {len(d.attachments)} attachment(s) not saved (see above)")
    return 0


MAX_NAME_BYTES = 255  # a file name's limit on Linux file systems (NAME_MAX), counted in bytes
MAX_EXTENSION = 16    # characters after the last dot kept as the extension


def save_attachment(directory: Path, name: str, data: bytes, index: int, used: set[str]) -> Path:
    """Write one attachment under a safe name in `directory`, never over an existing file.

    A file system with a shorter limit than MAX_NAME_BYTES (ENAMETOOLONG) gets `attachment-N` with the
    extension; a file that appears meanwhile gets the next free name. A write that fails leaves no file."""
    import errno
    candidate = safe_file_name(name, index, used, directory)
    for _ in range(3):
        out = directory / candidate
        try:
            f = open(out, "xb")  # never overwrite, even if a file appeared meanwhile
        except FileExistsError:
            candidate = safe_file_name(candidate, index, used, directory)
            continue
        except OSError as e:
            if e.errno != errno.ENAMETOOLONG:
                raise
            candidate = safe_file_name(f"attachment-{index + 1}{_extension(candidate)}", index, used, directory)
            continue
        try:
            with f:
                f.write(data)
        except OSError:
            out.unlink(missing_ok=True)
            raise
        return out
    raise OSError(errno.EEXIST, f"no free name for it in {directory}")


def _extension(base: str) -> str:
    stem, dot, ext = base.rpartition(".")
    return f".{ext}" if dot and stem and 0 < len(ext) <= MAX_EXTENSION else ""


def _cut(text: str, max_bytes: int) -> str:
    """At most `max_bytes` of UTF-8, cut on a character boundary."""
    return text.encode()[:max(max_bytes, 0)].decode(errors="ignore")


def safe_file_name(name: str, index: int, used: set[str], directory: Path | None = None) -> str:
    """A sender chooses attachment names: keep a plain base name (no path, separator, NUL or
    control character, no leading dot), NFC, at most MAX_NAME_BYTES bytes of UTF-8 with its
    extension kept (a Vietnamese character is 2 to 4 bytes: 120 characters could be 350), and
    never one already used in this run or present in `directory` (nothing is overwritten)."""
    import unicodedata
    base = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*').strip().lstrip(".")
    if not base:
        base = f"attachment-{index + 1}"
    ext = _extension(base)
    stem = base[:len(base) - len(ext)] if ext else base
    budget = MAX_NAME_BYTES - len(ext.encode())
    candidate, n = _cut(stem, budget) + ext, 1
    while candidate in used or (directory is not None and (directory / candidate).exists()):
        n += 1
        suffix = f"-{n}"
        candidate = _cut(stem, budget - len(suffix)) + suffix + ext
    used.add(candidate)
    return candidate


def cmd_ack(args) -> int:
    r = _client(args).ack(args.message_id)
    print("acknowledged" if r.was_new else "already acknowledged")
    return 0


def cmd_sent(args) -> int:
    entries = _client(args).sent_all(state=args.state or "")
    if args.json:
        return _print_json_list(entries)
    print(f"{'MESSAGE ID':32}  {'TO':15}  {'STATE':9}  {'TRIES':5}  {'DELIVERED (UTC)':19}  REASON")
    for e in entries:
        reason = (f"waits at {e.waits_at or 'a relay'} until {_when(e.waits_until_ms)} UTC"
                  if e.state == "not_registered_yet" else e.reason)
        print(f"{shown(e.message_id):32}  {shown(e.recipient):15}  {shown(e.state):9}  {e.attempts:5}  "
              f"{_when(e.delivered_ms):19}  {shown(reason)}"
              + (f"  (sent by {shown(e.held_for)}, held here)" if e.held_for else ""))
    return 0


def cmd_directory(args) -> int:
    agencies = _client(args).directory(parent=args.parent or "", recursive=args.recursive, level=args.level or 0,
                                       name_contains=args.name or "")
    if args.json:
        return _print_json_list(agencies)
    print(f"{'CODE':15}  {'LEVEL':5}  {'PARENT':15}  {'REACHABLE':9}  NAME")
    for a in agencies:
        print(f"{shown(a.code):15}  {a.level:5}  {shown(a.parent):15}  {'yes' if a.reachable else 'NO':9}  "
              f"{shown(a.name)}" + (f"  (retired: successor {shown(a.successor)})" if a.successor else ""))
    return 0


def cmd_lookup(args) -> int:
    a = _client(args).lookup(args.code)
    if a.successor:
        print(f"{shown(a.code)}  RETIRED from {_when(a.retired_ms)} UTC: its successor is {shown(a.successor)} "
              f"(issued by {shown(a.retired_by)}: {shown(a.retired_reason)})")
        if not a.endpoint:
            return 0
    print(f"{shown(a.code)}  {shown(a.name)}\nlevel {a.level}, parent {shown(a.parent)}, endpoint {shown(a.endpoint)}, "
          f"{'reachable' if a.reachable else 'NOT reachable'}")
    return 0


def _staff(args) -> pb.StaffInfo:
    return pb.StaffInfo(department=args.department or "", staff=args.staff or "", email=args.email or "",
                        mobile=args.mobile or "")


def cmd_status(args) -> int:
    mid = _client(args).set_status(args.message_id, args.code, args.description or "", _staff(args),
                                   client_key=args.client_key or "")
    print(f"status {args.code} sent ({shown(mid)})")
    return 0


def cmd_change(args) -> int:
    btype = {"revoke": 1, "update": 2, "replace": 3, "takeback": 0}[args.command]
    document = None
    if args.command in ("update", "replace"):
        document = pb.Document(subject=args.subject, content=args.content or "", document_id=args.document_id or "")
        for path in args.attach or []:
            p = Path(path)
            document.attachments.add(name=p.name, data=p.read_bytes(),
                                     content_type=mimetypes.guess_type(p.name)[0] or "application/octet-stream")
    resp = _client(args).change(args.doc, btype, take_back=args.command == "takeback", reason=args.reason or "",
                                document=document, staff=_staff(args), client_key=args.client_key or "")
    print(f"{args.command} {shown(resp.doc_id)}")
    for e in resp.envelopes:
        print(f"{shown(e.message_id)}  -> {shown(e.recipient)}")
    return 0


def cmd_track(args) -> int:
    t = _client(args).track(args.doc)
    if args.json:
        print(shown_json(json_format.MessageToJson(t, ensure_ascii=False)))
        return 0
    print(f"document {shown(t.doc_id)}: {shown(t.subject)} {shown(t.document_id)} (sent {_when(t.created_ms)} UTC)"
          + (f" by {shown(t.held_for)}, held here" if t.held_for else ""))
    for r in t.recipients:
        print(f"\n  {shown(r.recipient)}: {shown(r.state)}, handed over {_when(r.delivered_ms)}, "
              f"arrived {_when(r.arrived_ms)}" + (f" — {shown(r.reason)}" if r.reason else ""))
        if r.path:
            print("    path  " + " -> ".join(shown(h.code) for h in r.path))
        for st in r.statuses:
            who = " ".join(shown(x) for x in (st.staff_info.staff, st.staff_info.department) if x)
            print(f"    {shown(st.status_code)}  {_when(st.time_ms)}  {who}  {shown(st.description)}".rstrip())
    if t.changes:
        print("\n  changed by: " + ", ".join(map(shown, t.changes)))
    return 0


def cmd_import(args) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"{args.file}: no such file", 2)
    resp = _client(args).import_edxml(path.read_bytes(), args.to or [], args.ref or "", client_key=args.client_key or "")
    for w in resp.warnings:
        print(f"warning: {shown(w)}", file=sys.stderr)
    if resp.kind == "status":
        print(f"status sent ({shown(resp.status_message_id or ', '.join(e.message_id for e in resp.sent.envelopes))})")
    else:
        print(f"document {shown(resp.sent.doc_id)}")
        for e in resp.sent.envelopes:
            print(f"{shown(e.message_id)}  -> {shown(e.recipient)}")
    return 0


def cmd_export(args) -> int:
    if not is_message_id(args.message_id):
        raise SystemExit(f"lienthong export: {args.message_id!r} is not a message id")
    resp = _client(args).export_edxml(args.message_id, args.unwrap)
    for w in resp.warnings:
        print(f"warning: {shown(w)}", file=sys.stderr)
    out = Path(args.out) if args.out else Path(safe_file_name(resp.file_name, 0, set(), Path(".")))
    out.write_bytes(resp.packet)
    print(f"wrote {shown(str(out))} ({len(resp.packet)} bytes)")
    return 0


# ---- admin ----------------------------------------------------------------------

def _ago(ms: int, now_ms: int) -> str:
    if not ms:
        return "-"
    s = (now_ms - ms) / 1000
    return f"{s:.0f}s" if abs(s) < 120 else f"{s / 60:.0f}m" if abs(s) < 7200 else f"{s / 3600:.1f}h"


def cmd_queues(args) -> int:
    if getattr(args, "all", False):
        return _queues_all(args)
    return _show_queues(_client(args).admin.queues(), args.json)


def _queues_all(args) -> int:
    """Every agency's queues in turn (as the host admin when the host has one, each agency naming itself in
    `lienthong-agency`; else with each agency's own token), then a line each; one failing does not stop the
    others (exit 1)."""
    from .api.auth import call_metadata
    from .client import MailboxClient, api_address
    from .grpc_errors import reason_of
    from .host.config import load_host
    from .host.dispatch import AGENCY
    if getattr(args, "agency", None):
        raise CliError("give --agency CODE or --all, not both")
    host = load_host(args.config)
    summary, failed, answers = [], [], {}
    admins: dict[str, MailboxClient] = {}  # the host admin's: one channel per API address, not one per agency
    for s in host.agencies:
        code = s.node.code
        if host.admin_token:
            address = api_address(s)
            if address not in admins:
                admins[address] = MailboxClient(address, host.admin_token)
            client = admins[address]
            client.metadata = (*call_metadata(host.admin_token), (AGENCY, code))
        else:
            client = MailboxClient.for_settings(s)
        try:
            r = client.admin.queues()
        except grpc.RpcError as e:
            failed.append(code)
            summary.append(f"{code}: not answered ({e.code().name} {shown(reason_of(e) or '')})")
            continue
        finally:
            if not host.admin_token:
                client.close()
        answers[code] = json_format.MessageToDict(r)
        if not args.json:
            print(f"== agency {code}")
            _show_queues(r, False)
        summary.append(f"{code}: {len(r.hops)} hops, {sum(h.depth for h in r.hops)} queued, "
                       f"{sum(h.held for h in r.hops)} held")
    for client in admins.values():
        client.close()
    if args.json:
        print(shown_json(json.dumps(answers, ensure_ascii=False)))
    else:
        print(f"== host {args.config}: {len(host.agencies)} agencies")
        print("\n".join(summary))
    if failed:
        raise CliError(f"{len(failed)} of the host's agencies did not answer: {', '.join(failed)}")
    return 0


def _show_queues(r, as_json: bool) -> int:
    if as_json:
        print(shown_json(json_format.MessageToJson(r, ensure_ascii=False)))
        return 0
    print(f"{'NEXT HOP':15}  {'DEPTH':>6}  {'PARKED':>6}  {'KEPT':>6}  {'OLDEST':>6}  {'FAILS':>5}  {'NEXT TRY':>8}  "
          f"{'HELD':4}  LAST ERROR")
    for h in r.hops:
        due = "now" if h.next_attempt_ms <= r.now_ms else f"in {_ago(r.now_ms, h.next_attempt_ms)}"
        print(f"{shown(h.hop):15}  {h.depth:6}  {h.parked:6}  {h.kept_home:6}  {_ago(h.oldest_ms, r.now_ms):>6}  {h.failures:5}  {due:>8}  "
              f"{'yes' if h.held else 'no':4}  {shown(h.last_error)}")
    if not r.hops:
        print("(no queued mail)")
    return 0


def cmd_retry(args) -> int:
    r = _client(args).admin.retry(args.hop or "")
    print("retrying now: " + (", ".join(map(shown, r.retried)) or "nothing queued"))
    if r.held:
        print(f"held (release first): {', '.join(map(shown, r.held))}")
    return 0


def cmd_hold(args) -> int:
    admin = _client(args).admin
    r = admin.hold(args.hop) if args.command == "hold" else admin.release(args.hop)
    print(f"{shown(r.hop)} {'held' if r.held else 'released'} ({r.depth} queued)")
    return 0


def cmd_purge(args) -> int:
    r = _client(args).admin.purge(args.message_id, args.reason)
    print(f"purged {shown(r.message_id)} (from {shown(r.sender)} to {shown(r.recipient)}, queued for "
          f"{shown(r.next_hop)}); {shown(r.sender)} gets a non-delivery notice")
    return 0


EXIT_REFUSED = 4  # queues, retry, hold, release, purge, queue: the node refused the request (its reason printed)


def _size(n: int) -> str:
    return f"{n} B" if n < 10_000 else f"{n / 1000:.0f} KB" if n < 10_000_000 else f"{n / 1_000_000:.0f} MB"


def _flags(m) -> str:
    return ",".join(f for f, on in (("held", m.held), ("hop-held", m.hop_held), ("parked", m.parked)) if on) or "-"


def cmd_queue_list(args) -> int:
    messages, now = _client(args).admin.queue_listing(args.hop or "", args.parked)
    if args.json:
        return _print_json_list(messages)
    print(f"{'MESSAGE ID':32}  {'KIND':8}  {'SENDER':15}  {'RECIPIENT':15}  {'NEXT HOP':15}  {'SIZE':>7}  {'AGE':>6}  "
          f"{'TRIES':>5}  {'FLAGS':15}  LAST ERROR")
    for m in messages:
        print(f"{shown(m.message_id):32}  {m.kind:8}  {shown(m.sender):15}  {shown(m.recipient):15}  "
              f"{shown(m.next_hop):15}  {_size(m.size):>7}  {_ago(m.created_ms, now):>6}  {m.attempts:5}  "
              f"{_flags(m):15}  {shown(m.last_error)}")
    if not messages:
        print("(no queued mail)")
    return 0


def cmd_queue_message(args) -> int:
    admin = _client(args).admin
    call = {"hold": admin.hold_message, "release": admin.release_message, "retry": admin.retry_message}
    m = call[args.queue_command](args.message_id)
    done = {"hold": "held", "release": "released", "retry": "sent now"}[args.queue_command]
    print(f"{shown(m.message_id)} {done} (from {shown(m.sender)} to {shown(m.recipient)}, queued for "
          f"{shown(m.next_hop)})")
    return 0


def _effective_ms(text: str) -> int:
    """--effective: `now`, or an ISO 8601 time with its zone (2025-07-01T00:00:00+07:00); 0 means now."""
    if text == "now":
        return 0
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected `now` or an ISO 8601 time with its zone, got {text!r}") from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no zone: add one (+07:00 for Vietnam, Z for UTC)")
    return int(when.timestamp() * 1000)


def cmd_succession_issue(args) -> int:
    old = [c.strip() for c in args.old.split(",") if c.strip()]
    r = _client(args).admin.issue_succession(old, args.to, args.effective, args.reason)
    s = r.succession
    print(f"succession issued by {shown(s.issuer)} (list number {s.number}): {', '.join(map(shown, s.old_codes))} -> "
          f"{shown(s.successor)} from {_when(s.effective_ms)} UTC; pushed down the tree; "
          f"{r.rerouted} queued envelope(s) here re-addressed")
    return 0


def cmd_succession_list(args) -> int:
    r = _client(args).admin.list_successions()
    if args.json:
        return _print_json_list(r.successions)
    print(f"{'ISSUER':15}  {'NO':>4}  {'EFFECTIVE (UTC)':19}  {'SUCCESSOR':15}  OLD CODES  (REASON)")
    for s in r.successions:
        print(f"{shown(s.issuer):15}  {s.number:4}  {_when(s.effective_ms):19}  {shown(s.successor):15}  "
              f"{', '.join(map(shown, s.old_codes))}  ({shown(s.reason)})")
    if not r.successions:
        print("(no successions)")
    return 0


def cmd_retire(args) -> int:
    if sum(map(bool, (args.to, args.status, args.hand_over))) != 1:
        raise CliError("give --to CODE (begin retiring into the successor), --status (what is left) or --hand-over "
                       "(once drained: the mailbox to the successor)", 2)
    admin = _client(args, LONG_CALL_S if args.hand_over else 30.0).admin
    if args.hand_over:
        h = admin.hand_over()
        if args.json:
            print(shown_json(json_format.MessageToJson(h, ensure_ascii=False)))
            return 0
        print(f"handed this node's mailbox over to its successor: {h.inbox} received and {h.sent} sent envelope(s) "
              f"new there, {h.already} held there already; {h.resealed} sealed one(s) readable there, "
              f"{h.kept_sealed} kept sealed")
        return 0
    r = admin.retire_status() if args.status else admin.retire(args.to)
    if args.json:
        print(shown_json(json_format.MessageToJson(r, ensure_ascii=False)))
        return 0
    print(f"retiring into {shown(r.successor)} since {_when(r.started_ms)} UTC: new documents refused (NODE_RETIRING)")
    print(f"left: {r.queued} envelope(s) queued ({r.parked} parked), {r.unfetched} document(s) not fetched")
    if r.drained:
        print(f"drained: nothing left. Revoke this node's certificate: {r.revoke_command}")
    return 0


def cmd_takeover(args) -> int:
    backup = Path(args.from_backup).resolve()  # the node reads it: a path on its machine, whatever our cwd
    seal_key = str(Path(args.seal_key).resolve()) if args.seal_key else ""
    r = _client(args, LONG_CALL_S).admin.takeover(str(backup), seal_key)
    if args.json:
        print(shown_json(json_format.MessageToJson(r, ensure_ascii=False)))
        return 0
    print(f"took over {shown(r.predecessor)}'s mailbox (backup sha256 {r.backup_sha256}): {r.inbox} received and "
          f"{r.sent} sent envelope(s) new here, {r.already} held already")
    if r.resealed or r.kept_sealed:
        print(f"sealed to {shown(r.predecessor)}: {r.resealed} now open with this node's seal key, {r.kept_sealed} "
              "kept sealed (cannot be opened here)")
    return 0


# ---- wiring ---------------------------------------------------------------------

PURGE_REASON_HELP = "why, on one line, at most 500 characters (audited, and sent to the sender in the notice)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lienthong", description="A node of the document interconnection axis.",
                                epilog=f"Commands that read a node's config take --config FILE; without it, "
                                       f"${CONFIG_ENV}, then {DEFAULT_CONFIG}.")
    p.add_argument("--version", action="version", version=f"lienthong {_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    ca = sub.add_parser("ca", help="certificate authority (test stand-in for the national CA)")
    ca_sub = ca.add_subparsers(dest="ca_command", required=True)
    ca_init = ca_sub.add_parser("init", help="make a CA key and self-signed certificate")
    ca_init.add_argument("--dir", required=True, help="directory for ca.key and ca.pem")
    ca_init.add_argument("--name", default="lienthong test CA", help="CA common name")
    ca_init.add_argument("--force", action="store_true", help="replace an existing CA key and certificate")
    ca_init.set_defaults(func=cmd_ca_init)
    ca_sign = ca_sub.add_parser("sign", help="issue a node certificate for a certificate request")
    ca_sign.add_argument("csr", help="the request (node.csr from `lienthong init` or `lienthong renew`)")
    ca_sign.add_argument("--ca", required=True, help="CA directory (with ca.key, ca.pem)")
    ca_sign.add_argument("--out", help="certificate file to write (default: the request's name with .pem)")
    ca_sign.add_argument("--days", type=int, default=825, help="validity in days (default 825)")
    ca_sign.add_argument("--force", action="store_true", help="replace an existing certificate file")
    ca_sign.set_defaults(func=cmd_ca_sign)
    ca_revoke = ca_sub.add_parser("revoke", help="revoke a certificate the CA issued (then publish a CRL)")
    ca_revoke.add_argument("cert", help="the certificate to revoke (PEM)")
    ca_revoke.add_argument("--ca", required=True, help="CA directory (with ca.key, ca.pem)")
    ca_revoke.add_argument("--reason", required=True, choices=sorted(REVOCATION_REASONS),
                           help="why (X.509 CRL reason)")
    ca_revoke.set_defaults(func=cmd_ca_revoke)
    ca_crl = ca_sub.add_parser("crl", help="write ca.crl: every revoked certificate, signed by the CA (X.509 CRL)")
    ca_crl.add_argument("--ca", required=True, help="CA directory (with ca.key, ca.pem)")
    ca_crl.add_argument("--days", type=int, default=7, help="until the next update, in days (default 7)")
    ca_crl.set_defaults(func=cmd_ca_crl)

    init = sub.add_parser("init", help="make a node's signing key and certificate request (and certificate, with --ca)")
    init.add_argument("--code", required=True, help="agency code, e.g. 000.00.35.H53")
    init.add_argument("--name", required=True, help="agency name")
    init.add_argument("--dir", required=True, help="directory for node.key, node.csr (and node.pem, ca.pem)")
    init.add_argument("--ca", help="CA directory (with ca.key, ca.pem) to sign the certificate")
    init.add_argument("--parent", help="parent code, for codes outside the QCVN 102 form")
    init.add_argument("--force", action="store_true", help="replace an existing node key and certificate")
    init.set_defaults(func=cmd_init)

    renew = sub.add_parser("renew", help="renew the node's certificate: a new key and request for the same code")
    renew.add_argument("--config", help=f"node YAML config (tls.key, tls.cert, node.code) {CONFIG_HELP}")
    renew.add_argument("--agency", metavar="CODE", help=AGENCY_HELP)
    renew.add_argument("--install", action="store_true", help="put the issued renew/node.pem and its key in place")
    renew.add_argument("--ca", help="CA directory: sign and install at once (test CA)")
    renew.add_argument("--force", action="store_true", help="start over, replacing a renewal under way")
    renew.set_defaults(func=cmd_renew)

    run = sub.add_parser("run", help="run a node in the foreground until SIGTERM")
    run.add_argument("--config", help=f"node YAML config {CONFIG_HELP}")
    run.add_argument("--log-format", choices=["text", "json"], default="text",
                     help="text lines, or one JSON object a line (time is ISO 8601 with its zone either way)")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="check a config and the files it names, as run would, without running")
    check.add_argument("--config", help=f"node YAML config {CONFIG_HELP}")
    check.add_argument("--reach", action="store_true",
                       help="also dial the parent as the node would (mutual TLS, then health; a few seconds at "
                            "most): exit 1 if it does not answer SERVING")
    check.set_defaults(func=cmd_check_config)

    doctor = sub.add_parser("doctor", help="check config, files, certificate, the running node and every peer "
                                           "(reachable, and the agency we expect); print what to fix")
    doctor.add_argument("--config", help=f"node YAML config {CONFIG_HELP}")
    doctor.add_argument("--agency", metavar="CODE", help=AGENCY_HELP)
    doctor.add_argument("--all", action="store_true",
                        help="on a host: every agency's report, then one line per agency (exit 1 if any has a problem)")
    doctor.set_defaults(func=cmd_doctor)

    bk = sub.add_parser("backup", help="back up a node's mailbox while it runs (consistent, with a manifest and SHA-256)")
    bk.add_argument("--config", help=f"node YAML config (node.data_dir) {CONFIG_HELP}")
    bk.add_argument("--agency", metavar="CODE", help=AGENCY_HELP)
    bk.add_argument("--all", action="store_true",
                    help="on a host: back up every agency, one file each in the directory --to")
    bk.add_argument("--to", required=True,
                    help="file to write (never overwritten), or a directory for lienthong-<code>-<UTC time>.tar")
    bk.add_argument("--keep", type=_at_least_one, metavar="N",
                    help="keep the N newest backups of the node in that directory, remove older ones (each named)")
    bk.set_defaults(func=cmd_backup)
    rs = sub.add_parser("restore", help="restore a backup into the node's empty data directory (signature and digest checked)")
    rs.add_argument("--from", dest="source", required=True, help="backup file from `lienthong backup`")
    rs.add_argument("--config", help=f"node YAML config (node.code, node.data_dir: empty or missing) {CONFIG_HELP}")
    rs.add_argument("--agency", metavar="CODE", help=AGENCY_HELP)
    rs.add_argument("--agency-file", metavar="FILE",
                    help="on a host: the file of an agency set aside so that the host no longer serves it (e.g. "
                         "renamed CODE.yaml.off, then SIGHUP), its data directory free: restore it, then put the "
                         "file back and SIGHUP (docs/hosting.md)")
    rs.set_defaults(func=cmd_restore)

    audit = sub.add_parser("audit", help="the tamper-evident audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    av = audit_sub.add_parser("verify", help="prove the audit hash chain intact against the node's last signed "
                                             "checkpoint and its parent's copy; name every edited, deleted or "
                                             "reordered row (exit 0 intact, 3 broken)")
    av.add_argument("--config", help=f"node YAML config (node.data_dir, tls, the parent's address) {CONFIG_HELP}")
    av.add_argument("--agency", metavar="CODE", help=AGENCY_HELP)
    av.add_argument("--all", action="store_true",
                    help="on a host: every agency's chain in turn, then a line each (exit: the worst of them)")
    av.add_argument("--offline", action="store_true", help="do not ask the parent (its copy is not checked)")
    av.set_defaults(func=cmd_audit_verify)

    ev = sub.add_parser("evidence", help="write a self-contained, signed bundle proving one message's custody "
                                         "(envelope, receipts, trace, statuses, certificates, CRL)")
    ev.add_argument("doc", help="message id (or a doc id / DocumentId naming exactly one message)")
    ev.add_argument("--config", help=f"node YAML config (node.data_dir, tls.key to sign the bundle) {CONFIG_HELP}")
    ev.add_argument("--agency", metavar="CODE", help=AGENCY_HELP)
    ev.add_argument("--out", required=True, help="file to write (never overwritten)")
    ev.add_argument("--disclose", action="store_true",
                    help="also disclose the document's content key (a reader of the bundle sees the document); "
                         "statuses' keys are always disclosed")
    ev.set_defaults(func=cmd_evidence)
    ve = sub.add_parser("verify-evidence", help="check an evidence bundle offline with only the CA's certificate and "
                                                "say what it proves (exit 0), or refuse it naming what failed (exit 3)")
    ve.add_argument("file", help="bundle from `lienthong evidence`")
    ve.add_argument("--ca", required=True, help="the CA's certificate (PEM)")
    ve.set_defaults(func=cmd_verify_evidence)

    def api_cmd(name: str, help: str, func):
        sp = sub.add_parser(name, help=help)
        sp.add_argument("--config", help=f"node YAML config (local API address and token) {CONFIG_HELP}")
        sp.add_argument("--agency", metavar="CODE", help=AGENCY_HELP)
        sp.set_defaults(func=func)
        return sp

    send = api_cmd("send", "send a document to one or more agencies", cmd_send)
    send.add_argument("--to", action="append", required=True, help="recipient agency code (repeatable)")
    send.add_argument("--subject", required=True, help="the document's subject (TrichYeu)")
    send.add_argument("--content", help="the document's text (optional; attach files with --attach)")
    send.add_argument("--document-id", help="edXML DocumentId (OrganId,yyyy/MM/dd,Number/Notation)")
    send.add_argument("--priority", type=int, default=0, choices=range(5), help="0 normal .. 4 express-scheduled")
    send.add_argument("--attach", action="append", help="file to attach (repeatable)")
    send.add_argument("--require-registered", action="store_true",
                      help="refuse at once unless every recipient is registered (else mail for a code not registered "
                           "yet waits for its registration, limits.park_for)")

    inbox = api_cmd("inbox", "list received envelopes", cmd_inbox)
    inbox.add_argument("--new", action="store_true", help="only those not yet acknowledged")
    inbox.add_argument("--json", action="store_true", help="JSON, one object per entry, as the API answers")

    fetch = api_cmd("fetch", "show one received envelope, re-verified", cmd_fetch)
    fetch.add_argument("message_id", help="message id, from `inbox`")
    fetch.add_argument("--save-dir", help="write attachments here")
    fetch.add_argument("--json", action="store_true", help="the whole answer as JSON")

    ack = api_cmd("ack", "mark a received envelope downloaded", cmd_ack)
    ack.add_argument("message_id", help="message id, from `inbox`")

    sent = api_cmd("sent", "list sent envelopes with their delivery state", cmd_sent)
    sent.add_argument("--state", choices=["pending", "delivered", "rejected", "expired", "not_registered_yet"],
                      help="only envelopes in this delivery state")
    sent.add_argument("--json", action="store_true", help="JSON, one object per entry, as the API answers")

    directory = api_cmd("directory", "list agencies: the whole tree, or those below a code (through the tree)",
                        cmd_directory)
    directory.add_argument("--parent", help="whose children (default: the whole tree reachable from this node; "
                                            "with --recursive, this node's subtree)")
    directory.add_argument("--recursive", action="store_true", help="the whole subtree")
    directory.add_argument("--level", type=int, help="only this level (1 province/ministry .. 4)")
    directory.add_argument("--name", help="name contains (case-insensitive)")
    directory.add_argument("--json", action="store_true", help="JSON, one object per agency")

    lookup = api_cmd("lookup", "resolve one agency code through the tree", cmd_lookup)
    lookup.add_argument("code", help="agency code (QCVN 102, e.g. 000.00.35.H53)")

    def with_key(sp):
        sp.add_argument("--client-key", help="idempotency key (docs/api.md): run the command again with the same key "
                                             "after a failure, and it is done once, answered as the first time")
        return sp

    with_key(send)

    def with_staff(sp):
        sp.add_argument("--staff", help="staff name")
        sp.add_argument("--department", help="staff's department")
        sp.add_argument("--email", help="staff's e-mail")
        sp.add_argument("--mobile", help="staff's mobile number")
        return sp

    status = with_key(with_staff(api_cmd("status", "report a status on a received document (02-06, 15, 16)",
                                         cmd_status)))
    status.add_argument("message_id", help="the received document's message id, from `inbox`")
    status.add_argument("code", choices=sorted(["02", "03", "04", "05", "06", "15", "16"]),
                        help="01 is the node's own, sent once on arrival (refused from software)")
    status.add_argument("--description", help="what was done (sent to the document's sender)")

    for name, help in (("revoke", "revoke a document sent earlier (business type 1)"),
                       ("update", "send an update of a document (business type 2)"),
                       ("replace", "replace a document (business type 3)"),
                       ("takeback", "ask the recipients to return a document (status 13)")):
        sp = with_key(with_staff(api_cmd(name, help, cmd_change)))
        sp.add_argument("doc", help="doc id from send (or one of its message ids)")
        sp.add_argument("--reason", help="why (sent to the recipients)")
        if name in ("update", "replace"):
            sp.add_argument("--subject", required=True, help="the new version's subject")
            sp.add_argument("--content", help="the new version's text")
            sp.add_argument("--document-id", help="edXML DocumentId of the new version")
            sp.add_argument("--attach", action="append", help="file to attach (repeatable)")

    track = api_cmd("track", "per recipient: delivery, path and every status", cmd_track)
    track.add_argument("doc", help="doc id from send (or one of its message ids)")
    track.add_argument("--json", action="store_true", help="the whole answer as JSON")

    imp = with_key(api_cmd("import", "send an edXML packet (document or status) through the node", cmd_import))
    imp.add_argument("file", help="edXML packet (QCVN 102:2016) to send")
    imp.add_argument("--to", action="append", help="recipient (default: the packet's To)")
    imp.add_argument("--ref", help="a status: the received document's message id (default: by its DocumentId)")

    exp = api_cmd("export", "write a received document or status as an edXML packet", cmd_export)
    exp.add_argument("message_id", help="message id of a received document or status, from `inbox`")
    exp.add_argument("--out", help="file to write (default: <kind>_<id>.edxml)")
    exp.add_argument("--unwrap", action="store_true", help="write zip-wrapped attachments as their inner file")

    queues = api_cmd("queues", "per next hop: depth, oldest, failures, next attempt, held, last error", cmd_queues)
    queues.add_argument("--all", action="store_true",
                        help="on a host: every agency's queues in turn (as the host admin if the host has one), "
                             "then a line each; --json: one object by agency code")
    queues.add_argument("--json", action="store_true", help="JSON, one object per next hop")
    retry = api_cmd("retry", "forget the backoff and send now (one hop, or every hop)", cmd_retry)
    retry.add_argument("hop", nargs="?", help="next hop code (default: every hop with mail queued)")
    for name, help in (("hold", "stop sending to a next hop until released (kept across restarts)"),
                       ("release", "send to a held next hop again")):
        api_cmd(name, help, cmd_hold).add_argument("hop", help="next hop code")
    purge = api_cmd("purge", "remove a queued envelope for good; its sender gets a non-delivery notice", cmd_purge)
    purge.add_argument("message_id", help="the envelope's message id (lienthong queue list)")
    purge.add_argument("--reason", required=True, help=PURGE_REASON_HELP)
    for admin_cmd in (queues, retry, purge, sub.choices["hold"], sub.choices["release"]):
        admin_cmd.set_defaults(refused_exit=EXIT_REFUSED)

    queue = sub.add_parser("queue", help="one message at a time: list what waits here, hold, release, retry, purge")
    queue_sub = queue.add_subparsers(dest="queue_command", required=True)

    def queue_cmd(name: str, help: str, func):
        sp = queue_sub.add_parser(name, help=help)
        sp.add_argument("--config", help=f"node YAML config (local API address and token) {CONFIG_HELP}")
        sp.add_argument("--agency", metavar="CODE", help=AGENCY_HELP)
        sp.set_defaults(func=func, refused_exit=EXIT_REFUSED)
        return sp

    ql = queue_cmd("list", "every envelope waiting here (own, relayed, parked): id, sender, recipient, size, age, "
                           "attempts, last error", cmd_queue_list)
    ql.add_argument("--hop", help="only those for this next hop")
    ql.add_argument("--parked", action="store_true", help="only mail parked for an agency not registered here yet")
    ql.add_argument("--json", action="store_true", help="one JSON array")
    for name, help in (("hold", "keep one message from being sent until released (kept across restarts)"),
                       ("release", "let a held message go again"),
                       ("retry", "send one message now (its wait and its hop's backoff forgotten)")):
        queue_cmd(name, help, cmd_queue_message).add_argument("message_id", help="the message id (queue list)")
    qp = queue_cmd("purge", "remove one queued message for good; its sender gets a non-delivery notice", cmd_purge)
    qp.add_argument("message_id", help="the message id (queue list)")
    qp.add_argument("--reason", required=True, help=PURGE_REASON_HELP)

    succession = sub.add_parser("succession", help="agencies merged or re-coded: issue a succession, list those held "
                                                   "(docs/restructuring.md)")
    succession_sub = succession.add_subparsers(dest="succession_command", required=True)

    def succession_cmd(name: str, help: str, func):
        sp = succession_sub.add_parser(name, help=help)
        sp.add_argument("--config", help=f"node YAML config (local API address and token) {CONFIG_HELP}")
        sp.set_defaults(func=func, refused_exit=EXIT_REFUSED)
        return sp

    si = succession_cmd("issue", "retire agencies directly below this node: their mail goes to the successor "
                                 "(signed with this node's key, pushed down the tree)", cmd_succession_issue)
    si.add_argument("--old", required=True, help="the retired code(s), comma-separated (at most 64)")
    si.add_argument("--to", required=True, help="the successor's code (below this node)")
    si.add_argument("--effective", type=_effective_ms, default=0,
                    help="from when: `now` (default) or an ISO 8601 time with its zone")
    si.add_argument("--reason", required=True, help="why, on one line, at most 500 characters (it travels with it)")
    sl = succession_cmd("list", "every succession this node holds, from every issuer", cmd_succession_list)
    sl.add_argument("--json", action="store_true", help="one JSON array")

    retire = sub.add_parser("retire", help="retire this node into its successor: no new documents, what it holds "
                                           "sent on, then revoke it (docs/restructuring.md)")
    retire.add_argument("--to", help="the successor's code, as a succession this node holds names it")
    retire.add_argument("--status", action="store_true", help="what is left before the node is drained")
    retire.add_argument("--hand-over", action="store_true", help="once drained: send this node's mailbox (its "
                        "history) to the successor, which takes it over (as lienthong takeover)")
    retire.add_argument("--json", action="store_true", help="the answer as JSON")
    retire.add_argument("--config", help=f"node YAML config (local API address and token) {CONFIG_HELP}")
    retire.set_defaults(func=cmd_retire, refused_exit=EXIT_REFUSED)

    takeover = sub.add_parser("takeover", help="take over a retired predecessor's mailbox from its signed backup: its "
                                               "history, kept under its code (docs/restructuring.md)")
    takeover.add_argument("--from-backup", required=True, metavar="FILE",
                          help="the predecessor's backup (lienthong backup), on this node's machine")
    takeover.add_argument("--seal-key", metavar="FILE", help="the predecessor's seal.key (its keys directory): what "
                          "was sealed to it is opened and kept for this node's key; without it, kept sealed")
    takeover.add_argument("--json", action="store_true", help="the answer as JSON")
    takeover.add_argument("--config", help=f"node YAML config (local API address and token) {CONFIG_HELP}")
    takeover.set_defaults(func=cmd_takeover, refused_exit=EXIT_REFUSED)

    cli_stats.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if hasattr(args, "config"):  # not given: $LIENTHONG_CONFIG, then /etc/lienthong/node.yaml
            args.config = find_config(args.config)
        return args.func(args)
    except NoConfig as e:
        print(f"lienthong: {e}", file=sys.stderr)
        return 2
    except ConfigError as e:
        if getattr(args, "log_format", "text") == "json":  # `run --log-format json`: a log shipper reads stderr
            from .logs import error_line
            error_line(f"config error: {e}", "json", logger="lienthong.config", key=e.path)
        else:
            print(f"lienthong: config error: {e}", file=sys.stderr)
        return 2
    except (CliError, PagingStuck) as e:
        print(f"lienthong: {e}", file=sys.stderr)
        return getattr(e, "status", 1)
    except OSError as e:
        print(f"lienthong: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    except grpc.RpcError as e:
        if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            target = getattr(args, "_address", None) or _address_hint(args)
            print(f"lienthong: no node answers at {target} ({e.code().name})", file=sys.stderr)
        else:
            from .grpc_errors import describe, reason_of
            print(f"lienthong: {shown(describe(e))}", file=sys.stderr)
            if reason_of(e) and getattr(args, "refused_exit", None):
                return args.refused_exit
        return 1


def _address_hint(args) -> str:
    try:
        from .client import api_address
        return api_address(_settings(args))
    except Exception:
        return "the configured address"


if __name__ == "__main__":
    sys.exit(main())
