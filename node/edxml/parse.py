"""edXML (QCVN 102:2016) packet → protobuf `Document` or `Status`.

The mapping is field by field (see docs/edxml.md); nothing a sample carries is dropped.
Elements the node does not know are ignored but reported as warnings, so a vendor's
extension is visible to operators instead of vanishing silently.
"""
from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Callable, Iterable

from node.pb import envelope_pb2 as pb

from . import safexml, wrapping
from .common import DSIG_NS, EXPORT_PREFIX, NS, EdxmlError, bare_cid

_log = logging.getLogger(__name__)

# Bindings in force where export.py writes the Signature back (root default + `edXML:`).
EXPORT_CONTEXT = {"": NS, EXPORT_PREFIX: NS}

_ORG = {
    "OrganId": "organ_id",
    "OrganizationInCharge": "organization_in_charge",
    "OrganName": "organ_name",
    "OrganAdd": "organ_add",
    "Email": "email",
    "Telephone": "telephone",
    "Fax": "fax",
    "Website": "website",
}
_CODE = {"CodeNumber": "code_number", "CodeNotation": "code_notation"}
_PROMULGATION = {"Place": "place", "PromulgationDate": "promulgation_date"}
_DOCTYPE = {"Type": "type", "TypeDetail": "type_detail", "TypeName": "type_name"}
_SIGNER = {"Competence": "competence", "Position": "position", "FullName": "full_name"}
_OTHER = {
    "SphereOfPromulgation": "sphere_of_promulgation",
    "TyperNotation": "typer_notation",
    "PromulgationAmount": "promulgation_amount",
    "PageAmount": "page_amount",
    "Direction": "direction",
}
_RESPONSE_FOR = {"OrganId": "organ_id", "Code": "code", "PromulgationDate": "promulgation_date",
                 "DocumentId": "document_id"}
_STAFF = {"Department": "department", "Staff": "staff", "Email": "email", "Mobile": "mobile"}
_TRACE = {"OrganId": "organ_id", "Timestamp": "timestamp"}
_RECEIVER = {"OrganId": "organ_id", "ReceiverType": "receiver_type"}
_ATTACHMENT = {"ContentId": "content_id", "AttachmentName": "name", "Description": "description",
               "ContentType": "content_type"}
_MANIFEST = {"ContentId": "content_id", "ContentType": "content_type", "Description": "description",
             "AttachmentName": "name"}  # Reference -> ManifestReference

_DOC_HEADER = {"From", "To", "DocumentId", "Code", "PromulgationInfo", "DocumentType", "Subject", "Content",
               "SignerInfo", "DueDate", "ToPlaces", "OtherInfo", "ResponseFor", "SteeringType"}
_STATUS_HEADER = {"From", "ResponseFor", "StaffInfo", "StatusCode", "Description", "Timestamp"}
_BUSINESS = {"DocumentId", "BussinessDocType", "BussinessDocReason", "Paper", "BussinessDocumentInfo",
             "ReplacementInfoList", "StaffInfo"}
_UINT32_MAX = 2**32 - 1
# codes, not prose: whitespace around them is layout (a code on its own indented line, `<StatusCode> 03
# </StatusCode>`), which the national EdXML102 library trims when it reads them; names and subjects are kept
_TRIMMED = {"OrganId", "StatusCode"}


class _Reader:
    """Per-packet state: the parse result and where warnings go."""

    def __init__(self, parsed: safexml.Parsed, warn: Callable[[str], None]) -> None:
        self.parsed = parsed
        self.warn = warn
        self._bare_reported = False

    def ours(self, el: safexml.Element, path: str) -> bool:
        """QCVN namespace under any prefix; no namespace is tolerated (some senders omit it), and
        so is a prefix the packet never declared (safexml recovered it and warned, naming it)."""
        if el.ns == NS or (el.ns is not None and el.ns.startswith(safexml.UNDECLARED_NS)):
            return True
        if el.ns is None:
            if not self._bare_reported:
                self._bare_reported = True
                self.warn(f"{path}: element without the QCVN 102 namespace accepted as edXML")
            return True
        return False


_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_BINARY_NAME = re.compile(r"data|encoded|base64|binary|bytes", re.I)


def _attr_name(name: str) -> str:
    """`{uri}local` as the packet wrote it when the prefix was an undeclared one (`xlink:href`)."""
    head = "{" + safexml.UNDECLARED_NS
    return name[len(head):].replace("}", ":", 1) if name.startswith(head) else name


def _refuse_base64(el: safexml.Element, path: str, what: str) -> None:
    """An element the reader is about to leave aside must not be a file: refuse the packet if
    any element of its subtree holds base64 (signatures excepted, e.g. a builder's
    `DigitalSignature`: a signature value or certificate is not a file).

    Base64 here: the alphabet, a length that is a multiple of 4, and a sign that it is data
    rather than a word ("true" and "2025" are valid base64 too): padding, a name such as
    `AttachmentData`, or 64 characters or more that are not a hex digest."""
    stack = [(el, path)]
    while stack:
        e, where = stack.pop()
        if e.local.lower().endswith("signature"):
            continue
        s = "".join(e.text.split())
        if len(s) >= 4 and len(s) % 4 == 0 and _B64.fullmatch(s) and (
                s.endswith("=") or _BINARY_NAME.search(e.local) or (len(s) >= 64 and not _HEX.fullmatch(s))):
            raise EdxmlError(
                f"{where} (line {e.line}): {what} carries base64 data ({len(s)} characters); refused rather than "
                "dropped, since it may be a file (attachments are read from AttachmentEncoded/Attachment and from "
                "a gateway's edXMLEnvelope/edXMLAttachments/Attachment)", path=where, line=e.line)
        stack.extend((c, f"{where}/{c.local}") for c in e.children)


class _N:
    """An element with its path, children grouped by local name; unknown children are warned about."""

    __slots__ = ("r", "el", "path", "groups")

    def __init__(self, r: _Reader, el: safexml.Element, path: str, known: Iterable[str] = ()) -> None:
        self.r, self.el, self.path = r, el, path
        known = set(known)
        attrs = dict(el.attrs)
        if el.local == "edXMLManifest" and attrs.pop("version", "1.0") != "1.0":
            r.warn(f"{path}: manifest version {el.attrs['version']!r} read as 1.0")
        if attrs:
            r.warn(f"{path}: attribute(s) {', '.join(sorted(map(_attr_name, attrs)))} ignored")
        self.groups: dict[str, list[safexml.Element]] = {}
        for c in el.children:
            cpath = f"{path}/{c.local}"
            if c.local in known and (
                    (c.local == "Signature" and c.ns == DSIG_NS) or r.ours(c, cpath)):
                self.groups.setdefault(c.local, []).append(c)
            else:
                _refuse_base64(c, cpath, "unknown element")
                ns = f" (namespace {c.ns})" if c.ns not in (NS, None) else ""
                r.warn(f"{cpath}{ns}: unknown element ignored (line {c.line})")

    def has(self, name: str) -> bool:
        return name in self.groups

    def many(self, name: str, known: Iterable[str] = ()) -> list[_N]:
        els = self.groups.get(name, [])
        if len(els) == 1:
            return [_N(self.r, els[0], f"{self.path}/{name}", known)]
        return [_N(self.r, e, f"{self.path}/{name}[{i}]", known) for i, e in enumerate(els, 1)]

    def one(self, name: str, known: Iterable[str] = ()) -> _N | None:
        els = self.groups.get(name)
        if not els:
            return None
        if len(els) > 1:
            for i, extra in enumerate(els[1:], 2):
                _refuse_base64(extra, f"{self.path}/{name}[{i}]", f"occurrence {i} of a single element")
            self.r.warn(f"{self.path}/{name}: {len(els)} occurrences, only the first is kept")
        return _N(self.r, els[0], f"{self.path}/{name}", known)

    def require(self, name: str, known: Iterable[str] = ()) -> _N:
        n = self.one(name, known)
        if n is None:
            raise EdxmlError(f"missing element {self.path}/{name} ({self.el.local} starts at line {self.el.line})",
                             path=f"{self.path}/{name}", line=self.el.line)
        return n

    def text(self, name: str) -> str:
        """Leaf text exactly as sent (no stripping: names and subjects are kept verbatim), but for a code
        (_TRIMMED), whose surrounding whitespace is trimmed with a warning."""
        n = self.one(name)
        if n is None:
            return ""
        return _code_text(self.r, n.el, n.path) if name in _TRIMMED else n.el.text

    def uint(self, name: str) -> int:
        n = self.one(name)
        if n is None:
            return 0
        s = n.el.text.strip()
        if not s:
            return 0
        if not (s.isascii() and s.isdigit()) or int(s) > _UINT32_MAX:
            raise EdxmlError(f"{n.path} (line {n.el.line}): {s!r} is not a non-negative integer",
                             path=n.path, line=n.el.line)
        return int(s)

    def fill(self, msg, fields: dict[str, str]) -> None:  # noqa: ANN001
        for tag, attr in fields.items():
            if self.has(tag):
                setattr(msg, attr, self.text(tag))


def _code_text(r: _Reader, el: safexml.Element, path: str) -> str:
    trimmed = el.text.strip()
    if trimmed != el.text:
        r.warn(f"{path} (line {el.line}): whitespace around {trimmed!r} trimmed")
    return trimmed


def _organization(n: _N, msg: pb.Organization) -> None:
    msg.SetInParent()
    n.fill(msg, _ORG)


def _staff(n: _N | None, msg: pb.StaffInfo) -> None:
    if n is not None:
        msg.SetInParent()
        n.fill(msg, _STAFF)


def _sub(parent: _N, name: str, msg, fields: dict[str, str]) -> None:  # noqa: ANN001
    """Fill a flat sub-message; presence follows the element's presence (round-trips HasField)."""
    n = parent.one(name, fields)
    if n is not None:
        msg.SetInParent()
        n.fill(msg, fields)


def _traces(tl: _N, out) -> None:  # noqa: ANN001
    for th in tl.many("TraceHeader", _TRACE):
        t = out.add()
        th.fill(t, _TRACE)


def _business(tl: _N, b: pb.Business) -> None:
    n = tl.one("Bussiness", _BUSINESS)
    if n is None:
        return
    b.SetInParent()
    b.document_id = n.text("DocumentId")
    b.business_doc_type = n.uint("BussinessDocType")
    b.business_doc_reason = n.text("BussinessDocReason")
    b.paper = n.text("Paper")
    info = n.one("BussinessDocumentInfo", {"DocumentInfo", "DocumentReceiver", "ReceiverList"})
    if info is not None:
        b.document_info = info.text("DocumentInfo")
        b.document_receiver = info.text("DocumentReceiver")
        rl = info.one("ReceiverList", {"Receiver"})
        if rl is not None:
            for rn in rl.many("Receiver", _RECEIVER):
                rn.fill(b.receivers.add(), _RECEIVER)
    rep = n.one("ReplacementInfoList", {"ReplacementInfo"})
    if rep is not None:
        for ri in rep.many("ReplacementInfo", {"DocumentId", "OrganIdList"}):
            r = b.replacements.add()
            r.document_id = ri.text("DocumentId")
            ol = ri.one("OrganIdList", {"OrganId"})
            if ol is not None:
                r.organ_ids.extend(_code_text(n.r, o.el, o.path) for o in ol.many("OrganId"))
    _staff(n.one("StaffInfo", _STAFF), b.staff_info)


def _data(r: _Reader, n: _N | None, a: pb.Attachment, what: str, tag: str = "ContentTransferEncoded") -> None:
    """Decode base64 into `a.data`; text that is not base64 (a template's `${...}`, as a field
    packet carries) is kept as sent in `encoded_text`, with a warning, rather than refused or guessed at."""
    if n is None:
        r.warn(f"{what}: no {tag}, attachment {a.content_id!r} is empty")
        return
    try:
        a.data = base64.b64decode("".join(n.el.text.split()), validate=True)
    except (binascii.Error, ValueError) as e:
        a.encoded_text = n.el.text
        r.warn(f"{n.path} (line {n.el.line}): not base64 ({e}): {n.el.text[:60]!r}; kept as sent, "
               f"attachment {a.content_id!r} has no content")


def _encoded(r: _Reader, root: _N, doc: pb.Document) -> list[tuple[_N, pb.Attachment]]:
    """AttachmentEncoded/Attachment, the QCVN layout (every AttachmentEncoded block, in order)."""
    atts = []
    for enc in root.many("AttachmentEncoded", {"Attachment"}):
        for an in enc.many("Attachment", [*_ATTACHMENT, "ContentTransferEncoded"]):
            a = doc.attachments.add()
            an.fill(a, _ATTACHMENT)
            _data(r, an.one("ContentTransferEncoded"), a, an.path)
            atts.append((an, a))
    return atts


_GATEWAY = {"AttachmentName", "AttachmentType", "AttachmentSize", "AttachmentData", *_ATTACHMENT}


def _gateway(r: _Reader, env: _N, doc: pb.Document, first: int) -> list[tuple[_N, pb.Attachment]]:
    """edXMLEnvelope/edXMLAttachments/Attachment, a gateway's own layout, mapped onto attachments:
    AttachmentName -> name, AttachmentType ("TXT" or a MIME type) -> content_type, AttachmentData
    (base64) -> data; a ContentId is made up when there is none. Export writes the QCVN layout."""
    atts = []
    for block in env.many("edXMLAttachments", {"Attachment"}):
        for an in block.many("Attachment", _GATEWAY):
            a = doc.attachments.add()
            an.fill(a, _ATTACHMENT)
            if not an.has("ContentType"):
                a.content_type = wrapping.type_of_label(an.text("AttachmentType"), a.name)
            if not a.content_id:
                a.content_id = f"cid:edXMLAttachments-{first + len(atts) + 1}"
            _data(r, an.one("AttachmentData"), a, an.path, "AttachmentData")
            size = an.text("AttachmentSize").strip()
            if size and size != str(len(a.data)):
                r.warn(f"{an.path}/AttachmentSize: {size} but AttachmentData holds {len(a.data)} bytes")
            r.warn(f"{an.path} (line {an.el.line}): a gateway's layout (edXMLAttachments/AttachmentData), read as "
                   f"attachment {a.content_id!r} ({a.name!r}, {a.content_type}, {len(a.data)} bytes); export "
                   "writes it as AttachmentEncoded/Attachment")
            atts.append((an, a))
    return atts


def _attachments(r: _Reader, root: _N, env: _N, doc: pb.Document) -> None:
    """Attachments from AttachmentEncoded (and a gateway's edXMLAttachments), checked against the manifest.

    A Reference is matched to its Attachment by ContentId, compared without a `cid:` prefix
    (the national library strips it). A Reference with no attachment (an incomplete packet)
    is an error. Where a Reference says something else than its Attachment (another type or
    name, the prefix), both are kept: the Attachment describes the bytes carried, the
    Reference is written back as it came (`Attachment.manifest`); a disagreement of type,
    name or description is warned about.
    """
    atts = _encoded(r, root, doc)
    atts += _gateway(r, env, doc, len(atts))
    refs: list[_N] = []
    body = env.one("edXMLBody", {"edXMLManifest"})
    if body is not None:
        man = body.one("edXMLManifest", {"Reference"})
        if man is not None:
            refs = man.many("Reference", _ATTACHMENT)
    used = [False] * len(atts)
    for ref in refs:
        cid = ref.text("ContentId")
        idx = next((i for i, (_, a) in enumerate(atts) if not used[i] and a.content_id == cid), None)
        if idx is None:
            idx = next((i for i, (_, a) in enumerate(atts)
                        if not used[i] and bare_cid(a.content_id) == bare_cid(cid)), None)
        if idx is None:
            raise EdxmlError(f"{ref.path} (line {ref.el.line}): manifest lists {cid!r} but no Attachment "
                             "carries it", path=ref.path, line=ref.el.line)
        used[idx] = True
        an, a = atts[idx]
        said = {attr: ref.text(tag) for tag, attr in _MANIFEST.items() if ref.has(tag)}
        if any(value != getattr(a, attr) for attr, value in said.items()):
            a.manifest.CopyFrom(pb.ManifestReference(**said))
        for tag, attr in _ATTACHMENT.items():
            if tag == "ContentId" or attr not in said or said[attr] == getattr(a, attr):
                continue
            wrapped = " (the attachment is a zip wrapping, as the national library writes)" \
                if tag == "ContentType" and wrapping.is_wrapped(a) else ""
            r.warn(f"{ref.path}/{tag}: {said[attr]!r} differs from {an.path}/{tag} {getattr(a, attr)!r}{wrapped}; "
                   "both are kept (the attachment's describes the bytes carried)")
    for (an, a), u in zip(atts, used):
        if not u:
            r.warn(f"{an.path}: attachment {a.content_id!r} is not listed in edXMLManifest")


def _document(r: _Reader, root: _N, env: _N, hdr: _N, mh_el: safexml.Element, mh_path: str) -> pb.Document:
    mh = _N(r, mh_el, mh_path, _DOC_HEADER)
    d = pb.Document()
    _organization(mh.require("From", _ORG), d.from_organ)
    for t in mh.many("To", _ORG):
        _organization(t, d.to.add())
    d.document_id = mh.text("DocumentId")
    _sub(mh, "Code", d.code, _CODE)
    _sub(mh, "PromulgationInfo", d.promulgation_info, _PROMULGATION)
    _sub(mh, "DocumentType", d.document_type, _DOCTYPE)
    d.subject = mh.text("Subject")
    d.content = mh.text("Content")
    _sub(mh, "SignerInfo", d.signer_info, _SIGNER)
    d.due_date = mh.text("DueDate")
    places = mh.one("ToPlaces", {"Place"})
    if places is not None:
        d.to_places.extend(p.el.text for p in places.many("Place"))
    other = mh.one("OtherInfo", {"Priority", *_OTHER, "Appendixes"})
    if other is not None:
        d.other_info.SetInParent()
        d.other_info.priority = other.uint("Priority")
        other.fill(d.other_info, _OTHER)
        apps = other.one("Appendixes", {"Appendix"})
        if apps is not None:
            d.other_info.appendixes.extend(a.el.text for a in apps.many("Appendix"))
    for rf in mh.many("ResponseFor", _RESPONSE_FOR):
        rf.fill(d.response_for.add(), _RESPONSE_FOR)
    d.steering_type = mh.uint("SteeringType")
    tl = hdr.one("TraceHeaderList", {"TraceHeader", "Bussiness"})
    if tl is not None:
        _traces(tl, d.edxml_trace)
        _business(tl, d.business)
    _attachments(r, root, env, d)
    return d


def _status(r: _Reader, root: _N, env: _N, hdr: _N, mh_el: safexml.Element, mh_path: str) -> pb.Status:
    blocks = root.groups.get("AttachmentEncoded", []) + env.groups.get("edXMLAttachments", [])
    if env.has("edXMLBody") or any(c.local == "Attachment" for b in blocks for c in b.children):
        raise EdxmlError(f"{mh_path}/StatusCode is present (a status packet) but the packet also carries "
                         "edXMLBody or attachments", path=f"{mh_path}/StatusCode", line=mh_el.line)
    mh = _N(r, mh_el, mh_path, _STATUS_HEADER)
    s = pb.Status()
    _organization(mh.require("From", _ORG), s.from_organ)
    _sub(mh, "ResponseFor", s.response_for, _RESPONSE_FOR)
    _staff(mh.one("StaffInfo", _STAFF), s.staff_info)
    s.status_code = mh.text("StatusCode")
    s.description = mh.text("Description")
    s.timestamp = mh.text("Timestamp")
    tl = hdr.one("TraceHeaderList", {"TraceHeader"})
    if tl is not None:
        _traces(tl, s.edxml_trace)
    return s


MAX_WARNINGS = 50
"""Warnings kept per packet: a packet of 100,000 unknown elements must not answer with 100,000 lines."""


def _capped(append: Callable[[str], None], limit: int) -> Callable[[str], None]:
    count = [0]

    def warn(text: str) -> None:
        count[0] += 1
        if count[0] <= limit:
            append(text[:500])
        elif count[0] == limit + 1:
            append(f"more than {limit} warnings; the rest are not listed")
    return warn


def import_edxml(data: bytes, *, warnings: list[str] | None = None, max_warnings: int = MAX_WARNINGS,
                 max_depth: int = safexml.MAX_DEPTH,
                 max_ns_decls: int = safexml.MAX_NS_DECLS) -> pb.Document | pb.Status:
    """Parse one edXML packet into a `pb.Document` or `pb.Status`.

    The kind is decided by the packet: a MessageHeader with StatusCode is a status.
    Anything recoverable but irregular (stray leading bytes, unknown elements, manifest
    disagreements) is appended to `warnings` when a list is given, else logged at
    WARNING on "node.edxml.parse" — callers that store packets should pass a list and
    keep it with the message. Raises EdxmlError for unsafe, malformed or incomplete packets.
    """
    warn: Callable[[str], None] = _capped(warnings.append, max_warnings) if warnings is not None else _log.warning
    parsed = safexml.parse(data, warn, max_depth=max_depth, max_ns_decls=max_ns_decls)
    r = _Reader(parsed, warn)
    rel = parsed.root
    if rel.local != "edXML" or rel.ns not in (NS, None):
        raise EdxmlError(f"root element is {rel.local!r} (namespace {rel.ns!r}), expected edXML in {NS}",
                         path=rel.local, line=rel.line, column=rel.column)
    r.ours(rel, "edXML")
    root = _N(r, rel, "edXML", {"edXMLEnvelope", "AttachmentEncoded", "Signature"})
    env = root.require("edXMLEnvelope", {"edXMLHeader", "edXMLBody", "edXMLAttachments", "Signature"})
    hdr = env.require("edXMLHeader", {"MessageHeader", "TraceHeaderList", "Signature"})
    mh_els = hdr.groups.get("MessageHeader")
    if not mh_els:
        raise EdxmlError(f"missing element {hdr.path}/MessageHeader (edXMLHeader starts at line {hdr.el.line})",
                         path=f"{hdr.path}/MessageHeader", line=hdr.el.line)
    if len(mh_els) > 1:
        raise EdxmlError(f"{hdr.path}/MessageHeader occurs {len(mh_els)} times (second at line "
                         f"{mh_els[1].line})", path=f"{hdr.path}/MessageHeader", line=mh_els[1].line)
    mh_el, mh_path = mh_els[0], f"{hdr.path}/MessageHeader"
    is_status = any(c.local == "StatusCode" and c.ns in (NS, None) for c in mh_el.children)
    msg = (_status if is_status else _document)(r, root, env, hdr, mh_el, mh_path)
    sigs = [e for n in (root, env, hdr) for e in n.groups.get("Signature", [])]
    sigs.sort(key=lambda e: e.start)
    if sigs:
        msg.edxml_signature = "\n".join(safexml.verbatim(parsed, e, EXPORT_CONTEXT) for e in sigs)
    return msg
