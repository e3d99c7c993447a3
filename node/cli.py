"""`lienthong`: run a node, issue identities, and talk to a running node's local API."""
from __future__ import annotations

import argparse
import json
import logging
import mimetypes
import sys
from datetime import datetime, timezone
from pathlib import Path

import grpc
from google.protobuf import json_format

from .config import ConfigError, load_config
from .pb import envelope_pb2 as pb

KIND_NAMES = {pb.DOCUMENT: "document", pb.STATUS: "status", pb.NOTICE: "notice"}


class CliError(Exception):
    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if ms else "-"


def _client(args):
    from .client import MailboxClient
    return MailboxClient.for_settings(load_config(args.config))


# ---- identity -------------------------------------------------------------------

def cmd_ca_init(args) -> int:
    from .identity import certs
    key, cert = certs.init_ca(Path(args.dir), args.name)
    print(f"CA key  {key} (mode 0600)\nCA cert {cert}")
    return 0


def cmd_init(args) -> int:
    from .codes import CodeError, Hierarchy
    from .identity import certs
    try:
        Hierarchy({args.code: args.parent} if args.parent else None).validate(args.code)
    except CodeError as e:
        raise CliError(str(e), 2) from None
    try:
        files = certs.init_node(Path(args.dir), args.code, args.name, Path(args.ca) if args.ca else None)
    except FileNotFoundError as e:
        raise CliError(str(e), 2) from None
    print(f"key  {files.key} (mode 0600)\ncsr  {files.csr}")
    if files.cert:
        print(f"cert {files.cert}\nca   {files.ca}")
    return 0


# ---- node -----------------------------------------------------------------------

def cmd_run(args) -> int:
    from .runtime import run
    settings = load_config(args.config)
    logging.basicConfig(level=settings.log_level, format=f"%(asctime)s {settings.node.code} %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return run(settings)


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
    resp = _client(args).send(doc, args.to, priority=args.priority)
    for e in resp.envelopes:
        print(f"{e.message_id}  -> {e.recipient}")
    return 0


def cmd_inbox(args) -> int:
    entries = _client(args).inbox_all(only_new=args.new)
    if args.json:
        print(json.dumps([json_format.MessageToDict(e) for e in entries], ensure_ascii=False, indent=1))
        return 0
    print(f"{'MESSAGE ID':32}  {'KIND':8}  {'FROM':15}  {'RECEIVED (UTC)':19}  ACK  SUBJECT")
    for e in entries:
        print(f"{e.message_id:32}  {KIND_NAMES.get(e.kind, '?'):8}  {e.sender:15}  {_when(e.received_ms):19}  "
              f"{'yes' if e.acked else 'no ':3}  {e.subject}")
    return 0


def cmd_fetch(args) -> int:
    r = _client(args).fetch(args.message_id)
    if args.json:
        print(json_format.MessageToJson(r, ensure_ascii=False))
        return 0
    print(f"message   {r.entry.message_id} ({KIND_NAMES.get(r.entry.kind, '?')})")
    print(f"from      {r.entry.sender}  signature {'verified' if r.signature_verified else 'NOT VERIFIED'} ({r.signer_subject})")
    print("path      " + " -> ".join(f"{h.code}@{_when(h.time_ms)}" for h in r.path))
    body = r.payload.WhichOneof("body")
    if body == "document":
        d = r.payload.document
        print(f"subject   {d.subject}\ndoc id    {d.document_id}")
        if d.content:
            print(f"content   {d.content}")
        used: set[str] = set()
        for i, a in enumerate(d.attachments):
            print(f"attached  {a.name} ({a.content_type}, {len(a.data)} bytes)")
            if args.save_dir:
                out = Path(args.save_dir) / safe_file_name(a.name, i, used)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(a.data)
                print(f"saved     {out}")
    else:
        print(json_format.MessageToJson(r.payload, ensure_ascii=False))
    return 0


def safe_file_name(name: str, index: int, used: set[str]) -> str:
    """A sender chooses attachment names: keep only a plain base name, never a path, and never overwrite."""
    base = Path(name.replace("\\", "/")).name
    if base in ("", ".", ".."):
        base = f"attachment-{index + 1}"
    candidate, n = base, 1
    while candidate in used:
        n += 1
        stem, dot, ext = base.partition(".")
        candidate = f"{stem}-{n}{dot}{ext}"
    used.add(candidate)
    return candidate


def cmd_ack(args) -> int:
    r = _client(args).ack(args.message_id)
    print("acknowledged" if r.was_new else "already acknowledged")
    return 0


def cmd_sent(args) -> int:
    entries = _client(args).sent_all(state=args.state or "")
    if args.json:
        print(json.dumps([json_format.MessageToDict(e) for e in entries], ensure_ascii=False, indent=1))
        return 0
    print(f"{'MESSAGE ID':32}  {'TO':15}  {'STATE':9}  {'TRIES':5}  {'DELIVERED (UTC)':19}  REASON")
    for e in entries:
        print(f"{e.message_id:32}  {e.recipient:15}  {e.state:9}  {e.attempts:5}  {_when(e.delivered_ms):19}  {e.reason}")
    return 0


# ---- wiring ---------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lienthong", description="A node of the document interconnection axis.")
    sub = p.add_subparsers(dest="command", required=True)

    ca = sub.add_parser("ca", help="certificate authority (test stand-in for the national CA)")
    ca_sub = ca.add_subparsers(dest="ca_command", required=True)
    ca_init = ca_sub.add_parser("init", help="make a CA key and self-signed certificate")
    ca_init.add_argument("--dir", required=True, help="directory for ca.key and ca.pem")
    ca_init.add_argument("--name", default="lienthong test CA", help="CA common name")
    ca_init.set_defaults(func=cmd_ca_init)

    init = sub.add_parser("init", help="make a node's signing key and certificate request (and certificate, with --ca)")
    init.add_argument("--code", required=True, help="agency code, e.g. 000.00.35.H53")
    init.add_argument("--name", required=True, help="agency name")
    init.add_argument("--dir", required=True, help="directory for node.key, node.csr (and node.pem, ca.pem)")
    init.add_argument("--ca", help="CA directory (with ca.key, ca.pem) to sign the certificate")
    init.add_argument("--parent", help="parent code, for codes outside the QCVN 102 form")
    init.set_defaults(func=cmd_init)

    run = sub.add_parser("run", help="run a node in the foreground until SIGTERM")
    run.add_argument("--config", required=True, help="node YAML config")
    run.set_defaults(func=cmd_run)

    def api_cmd(name: str, help: str, func):
        sp = sub.add_parser(name, help=help)
        sp.add_argument("--config", required=True, help="node YAML config (local API address and token)")
        sp.set_defaults(func=func)
        return sp

    send = api_cmd("send", "send a document to one or more agencies", cmd_send)
    send.add_argument("--to", action="append", required=True, help="recipient agency code (repeatable)")
    send.add_argument("--subject", required=True)
    send.add_argument("--content")
    send.add_argument("--document-id", help="edXML DocumentId (OrganId,yyyy/MM/dd,Number/Notation)")
    send.add_argument("--priority", type=int, default=0, choices=range(5), help="0 normal .. 4 express-scheduled")
    send.add_argument("--attach", action="append", help="file to attach (repeatable)")

    inbox = api_cmd("inbox", "list received envelopes", cmd_inbox)
    inbox.add_argument("--new", action="store_true", help="only those not yet acknowledged")
    inbox.add_argument("--json", action="store_true")

    fetch = api_cmd("fetch", "show one received envelope, re-verified", cmd_fetch)
    fetch.add_argument("message_id")
    fetch.add_argument("--save-dir", help="write attachments here")
    fetch.add_argument("--json", action="store_true")

    ack = api_cmd("ack", "mark a received envelope downloaded", cmd_ack)
    ack.add_argument("message_id")

    sent = api_cmd("sent", "list sent envelopes with their delivery state", cmd_sent)
    sent.add_argument("--state", choices=["pending", "delivered", "rejected", "expired"])
    sent.add_argument("--json", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as e:
        print(f"lienthong: config error: {e}", file=sys.stderr)
        return 2
    except CliError as e:
        print(f"lienthong: {e}", file=sys.stderr)
        return e.status
    except OSError as e:
        print(f"lienthong: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    except grpc.RpcError as e:
        if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            target = getattr(args, "_address", None) or _address_hint(args)
            print(f"lienthong: no node answers at {target} ({e.code().name})", file=sys.stderr)
        else:
            print(f"lienthong: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1


def _address_hint(args) -> str:
    try:
        from .client import api_address
        return api_address(load_config(args.config))
    except Exception:
        return "the configured address"


if __name__ == "__main__":
    sys.exit(main())
