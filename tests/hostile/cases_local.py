"""Unbounded work asked through the local API, and the CLI's handling of names a sender chose.

The local API's client holds the token, so it is trusted to ask, not to ask for unbounded work:
each size it controls is refused OVER_LIMIT (or MALFORMED for an edXML packet, naming the
limit), before anything is queued. The CLI saves attachments a (malicious) sender named: only
inside --save-dir, under a plain name, never over an existing file.
"""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from node.cli import main as cli
from node.pb import envelope_pb2 as pb
from node.pb import mailbox_pb2 as mpb

from .cases_envelopes import deliver
from .core import Observed, call, case
from .world import D, M, NS_EDXML, SAMPLES, seal

SEND = "Mailbox.Send at D"
IMPORT = "Mailbox.ImportEdxml at D"


def send(s, doc: pb.Document, recipients: list[str], priority: int = 0) -> Observed:
    api = s.w.api(D)
    return call(api.stub.Send, mpb.SendRequest(document=doc, recipients=recipients, priority=priority),
                metadata=api.metadata)


def import_packet(s, packet: bytes, recipients=(M,)) -> tuple[Observed, mpb.ImportEdxmlResponse | None]:
    api = s.w.api(D)
    got = []
    o = call(lambda req, **kw: got.append(api.stub.ImportEdxml(req, **kw)),
             mpb.ImportEdxmlRequest(packet=packet, recipients=list(recipients)), metadata=api.metadata)
    return o, (got[0] if got else None)


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


@case("limits", "edXML nested 4000 deep with a namespace at every level", "INVALID_ARGUMENT", "MALFORMED", via=IMPORT)
def _(s):
    opens = "".join(f'<x{i}:e xmlns:x{i}="urn:{i}">' for i in range(4000))
    closes = "".join(f"</x{i}:e>" for i in reversed(range(4000)))
    packet = f'<edXML xmlns="{NS_EDXML}"><edXMLEnvelope>{opens}{closes}</edXMLEnvelope></edXML>'.encode()
    pid = s.w.cluster.nodes[D].pid
    peak = peak_rss_kb(pid)
    o, _ = import_packet(s, packet)
    assert "nested more than 64 deep" in o.detail, o.detail
    assert peak_rss_kb(pid) - peak < 32 << 10, "the node's peak memory grew by more than 32 MiB"
    return o


@case("limits", "edXML with 1001 namespace declarations", "INVALID_ARGUMENT", "MALFORMED", via=IMPORT)
def _(s):
    decls = " ".join(f'xmlns:p{i}="urn:{i}"' for i in range(1001))
    o, _ = import_packet(s, f'<edXML xmlns="{NS_EDXML}" {decls}/>'.encode())
    assert "more than 1000 namespace declarations" in o.detail, o.detail
    return o


@case("limits", "edXML billion laughs", "INVALID_ARGUMENT", "MALFORMED", via=IMPORT)
def _(s):
    lol = '<!DOCTYPE edXML [<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)) + "]>"
    o, _ = import_packet(s, f'{lol}<edXML xmlns="{NS_EDXML}">&j;</edXML>'.encode())
    assert "DOCTYPE" in o.detail, o.detail
    return o


@case("limits", "edXML with a number of 1 MB", "INVALID_ARGUMENT", "MALFORMED", via=IMPORT)
def _(s):
    """The refusal quotes the element's text: bounded, else the status went over gRPC's trailer limit and
    the client got RESOURCE_EXHAUSTED without the reason."""
    sample = (SAMPLES / "edoc_new.edxml").read_text(encoding="utf-8")
    packet = re.sub(r"<edXML:Priority>\d*</edXML:Priority>", "<edXML:Priority>" + "9x" * 500_000 + "</edXML:Priority>",
                    sample, count=1)
    assert packet != sample
    o, _ = import_packet(s, packet.encode())
    assert len(o.detail) <= 400 and "Priority" in o.detail, o.detail
    return o


@case("limits", "edXML with 500 unknown elements: warnings capped at 50", "OK", "", via=IMPORT)
def _(s):
    sample = (SAMPLES / "edoc_new.edxml").read_text(encoding="utf-8")  # From is 002.00.20.H13: D signs it here
    sample = sample.replace("<edXML:OrganId>002.00.20.H13</edXML:OrganId>", f"<edXML:OrganId>{D}</edXML:OrganId>", 1)
    unknown = "".join(f"<edXML:Vendor{i}>x</edXML:Vendor{i}>" for i in range(500))
    packet = sample.replace("<edXML:MessageHeader>", "<edXML:MessageHeader>" + unknown, 1).encode()
    o, resp = import_packet(s, packet)
    assert len(resp.warnings) == 51 and resp.warnings[-1] == "more than 50 warnings; the rest are not listed"
    return o.allowing(*(e.message_id for e in resp.sent.envelopes))


@case("limits", "Send to 501 recipients", "INVALID_ARGUMENT", "OVER_LIMIT", via=SEND)
def _(s):
    return send(s, pb.Document(subject="quá nhiều"), [f"{n:03d}.29.35.H53" for n in range(501)])


@case("limits", "Send with 101 attachments", "INVALID_ARGUMENT", "OVER_LIMIT", via=SEND)
def _(s):
    return send(s, pb.Document(subject="x", attachments=[pb.Attachment(name=f"{i}.pdf") for i in range(101)]), [M])


@case("limits", "Send with an attachment name of 256 characters", "INVALID_ARGUMENT", "OVER_LIMIT", via=SEND)
def _(s):
    return send(s, pb.Document(subject="x", attachments=[pb.Attachment(name="a" * 256)]), [M])


@case("limits", "SendBatch of 1001 documents", "INVALID_ARGUMENT", "INVALID_REQUEST", via="Mailbox.SendBatch at D")
def _(s):
    api = s.w.api(D)
    one = mpb.SendRequest(document=pb.Document(subject="x"), recipients=[M])
    return call(api.stub.SendBatch, mpb.SendBatchRequest(documents=[one] * 1001), metadata=api.metadata)


@case("limits", "Send with priority 7", "INVALID_ARGUMENT", "INVALID_REQUEST", via=SEND)
def _(s):
    return send(s, pb.Document(subject="x"), [M], priority=7)


@case("limits", "Send to a recipient that is no agency code and nobody holds (`abc`)", "INVALID_ARGUMENT",
      "INVALID_REQUEST", via=SEND)
def _(s):
    o = send(s, pb.Document(subject="gõ nhầm"), [M, "abc"])
    assert o.detail.startswith("recipients[1]:"), o.detail  # named, and nothing queued for M either
    return o


DIRECTORY = "Mailbox.Directory at D"


for label, token in (("made up", "zzz"), ("a bare agency code, as tokens once were", "000.00.35.H53"),
                     ("of 10,000 characters", "A" * 10_000), ("not base64", "!!.??")):
    @case("limits", f"Directory with a page token {label}", "INVALID_ARGUMENT", "INVALID_REQUEST", via=DIRECTORY)
    def _(s, token=token):
        api = s.w.api(D)
        o = call(api.stub.Directory, mpb.DirectoryRequest(page_token=token), metadata=api.metadata)
        assert "page_token" in o.detail, o.detail  # refused, not read as the end of the listing
        return o


@case("limits", "Directory searching names for 100,000 characters (no name is longer than 300)", "INVALID_ARGUMENT",
      "OVER_LIMIT", via=DIRECTORY)
def _(s):
    api = s.w.api(D)
    o = call(api.stub.Directory, mpb.DirectoryRequest(name_contains="hoà " * 25_000), metadata=api.metadata)
    assert "name_contains" in o.detail, o.detail  # refused before the listing is fetched, or a name folded
    return o


# ---- the CLI saves what a sender named ------------------------------------------------------------

FETCH = "M → D, then `lienthong fetch --save-dir` at D"


def fetched(s, names: list[str], *, existing: list[str] = ()) -> Observed:
    """M sends D a document with attachments so named; D's operator saves them with the CLI."""
    w = s.w
    home = w.cli_root / f"case-{len(list(w.cli_root.iterdir()))}"
    save = home / "save"
    save.mkdir(parents=True)
    (home / "outside.txt").write_text("must not change")
    for name in existing:
        (save / name).write_text("already here")
    s.begin()
    doc = pb.Document(subject="tệp đính kèm", attachments=[pb.Attachment(name=n, data=f"data {i}".encode())
                                                            for i, n in enumerate(names)])
    h, raw = seal(w.signer(M), D, pb.Payload(document=doc))
    assert deliver(s, raw).status == "OK"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        status = cli(["fetch", "--config", str(w.cluster.nodes[D].config), h.message_id, "--save-dir", str(save)])
    assert status == 0, out.getvalue()
    assert sorted(p.name for p in home.iterdir()) == ["outside.txt", "save"]
    saved = sorted(p.name for p in save.iterdir() if p.name not in existing)
    assert all(p.is_file() and p.parent == save for p in save.iterdir())
    return Observed("OK", "saved as " + ", ".join(map(shown, saved))).allowing(h.message_id, paths=[save])


def shown(name: str) -> str:
    return name if len(name) <= 40 else f"{name[:3]}…{name[-7:]} ({len(name)} characters)"


for label, names, saved in (("'..' and '.'", ["..", "."], "attachment-1, attachment-2"),
                           ("a relative path", ["../../etc/passwd"], "passwd"),
                           ("a Windows path", ["..\\..\\boot.ini"], "boot.ini"),
                           ("an absolute path", ["/abs/dir/scan.pdf"], "scan.pdf"),
                           ("a NUL", ["bad\x00name.pdf"], "badname.pdf"),
                           ("escapes and control characters", ["\x1b[31mred\x07\r\n.pdf"], "[31mred.pdf"),
                           ("254 characters", ["a" * 250 + ".pdf"], "aaa…aaa.pdf (254 characters)"),
                           ("250 Vietnamese characters", ["ữ" * 250 + ".pdf"], "ữữữ…ữữữ.pdf (87 characters)")):
    @case("cli files", f"attachment named with {label}", "OK", f"saved as {saved}", via=FETCH, prepares=True)
    def _(s, names=names):
        return fetched(s, names)


@case("cli files", "two attachments of the name of a file already there", "OK", "saved as scan-2.pdf, scan-3.pdf",
      via=FETCH, prepares=True)
def _(s):
    return fetched(s, ["scan.pdf", "scan.pdf"], existing=["scan.pdf"])
