"""protobuf `Document` / `Status` → edXML (QCVN 102:2016) packet bytes.

The layout copies the real samples, prefixes included (`edXML:` on header elements,
unprefixed Attachment children, a locally declared `edXML:ContentTransferEncoded`),
because agencies' software in the field is not guaranteed to resolve namespaces
properly and may match on the literal prefix.

Emission rules (why: so import → export → import gives back the same message):
sub-messages are written when present (HasField), repeated fields per entry, string
fields when non-empty, numeric codes always inside their container; Attachment and
manifest Reference always carry all four descriptive fields, as in the samples.
"""
from __future__ import annotations

import base64
import re
from datetime import datetime

from node.pb import envelope_pb2 as pb

from . import safexml
from .common import EXPORT_PREFIX, NS, EdxmlError, bare_cid

_P = EXPORT_PREFIX + ":"
_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

_ORG_DOC = (("OrganId", "organ_id"), ("OrganizationInCharge", "organization_in_charge"),
            ("OrganName", "organ_name"), ("OrganAdd", "organ_add"), ("Email", "email"),
            ("Telephone", "telephone"), ("Fax", "fax"), ("Website", "website"))
# Status samples list OrganName before OrganizationInCharge; follow them.
_ORG_STATUS = (_ORG_DOC[0], _ORG_DOC[2], _ORG_DOC[1], *_ORG_DOC[3:])
_RF_DOC = (("OrganId", "organ_id"), ("Code", "code"), ("DocumentId", "document_id"),
           ("PromulgationDate", "promulgation_date"))
_RF_STATUS = (("OrganId", "organ_id"), ("Code", "code"), ("PromulgationDate", "promulgation_date"),
              ("DocumentId", "document_id"))
_STAFF_BUSINESS = (("Department", "department"), ("Staff", "staff"), ("Email", "email"), ("Mobile", "mobile"))
_STAFF_STATUS = (("Department", "department"), ("Staff", "staff"), ("Mobile", "mobile"), ("Email", "email"))
_CODE = (("CodeNumber", "code_number"), ("CodeNotation", "code_notation"))
_PROMULGATION = (("Place", "place"), ("PromulgationDate", "promulgation_date"))
_DOCTYPE = (("Type", "type"), ("TypeDetail", "type_detail"), ("TypeName", "type_name"))
_SIGNER = (("Competence", "competence"), ("Position", "position"), ("FullName", "full_name"))
_OTHER = (("SphereOfPromulgation", "sphere_of_promulgation"), ("TyperNotation", "typer_notation"),
          ("PromulgationAmount", "promulgation_amount"), ("PageAmount", "page_amount"),
          ("Direction", "direction"))
_RECEIVER = (("OrganId", "organ_id"), ("ReceiverType", "receiver_type"))


class _W:
    """Indented writer that tracks the element path for error messages."""

    def __init__(self) -> None:
        self.out: list[str] = ['<?xml version="1.0" encoding="UTF-8"?>\n']
        self.stack: list[str] = []

    def _path(self, name: str = "") -> str:
        parts = [s.split(":")[-1] for s in self.stack] + ([name.split(":")[-1]] if name else [])
        return "/".join(parts)

    def _esc(self, text: str, name: str) -> str:
        bad = _ILLEGAL.search(text)
        if bad:
            raise EdxmlError(f"{self._path(name)}: character U+{ord(bad.group()):04X} cannot be carried in XML",
                             path=self._path(name))
        return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                .replace("\r", "&#13;"))

    def open(self, name: str, attrs: str = "") -> None:
        self.out.append(f"{'  ' * len(self.stack)}<{name}{attrs}>\n")
        self.stack.append(name)

    def close(self) -> None:
        name = self.stack.pop()
        self.out.append(f"{'  ' * len(self.stack)}</{name}>\n")

    def leaf(self, name: str, text: str, attrs: str = "") -> None:
        self.out.append(f"{'  ' * len(self.stack)}<{name}{attrs}>{self._esc(text, name)}</{name}>\n")

    def raw(self, text: str) -> None:
        self.out.append(f"{'  ' * len(self.stack)}{text}\n")

    def fields(self, msg, spec, *, always: bool = False) -> None:  # noqa: ANN001
        for tag, attr in spec:
            value = getattr(msg, attr)
            if value or always:
                self.leaf(_P + tag, value)

    def group(self, name: str, msg, spec) -> None:  # noqa: ANN001
        self.open(name)
        self.fields(msg, spec)
        self.close()

    def result(self) -> bytes:
        return "".join(self.out).encode("utf-8")


Entry = tuple[str | None, str | None]
"""A TraceHeader to write: (OrganId, Timestamp), None for an element that is not written."""


def _strict(trace: list[tuple[str, str]], what: str) -> list[Entry]:
    """Entries this node adds: a non-empty organ id and a 'yyyy/MM/dd HH:mm:ss' timestamp each."""
    pairs: list[Entry] = []
    for item in trace:
        try:
            organ_id, ts = item
        except (TypeError, ValueError):
            raise EdxmlError(f"{what} {item!r}: expected an (organ id, timestamp) pair") from None
        if not isinstance(organ_id, str) or not organ_id:
            raise EdxmlError(f"{what} {item!r}: organ id must be a non-empty string")
        try:
            datetime.strptime(ts, "%Y/%m/%d %H:%M:%S")
        except (TypeError, ValueError):
            raise EdxmlError(f"{what} {item!r}: timestamp must be 'yyyy/MM/dd HH:mm:ss'") from None
        pairs.append((organ_id, ts))
    return pairs


def _trace_entries(msg: pb.Document | pb.Status, trace: list[tuple[str, str]] | None,
                   hops: list[tuple[str, str]]) -> list[Entry]:
    if trace is not None:
        entries = _strict(trace, "trace entry")
    else:  # as imported: an element that was absent stays absent, text is written as it came
        entries = [(t.organ_id if t.HasField("organ_id") else None, t.timestamp if t.HasField("timestamp") else None)
                   for t in msg.edxml_trace]
    return entries + _strict(hops, "hop")


def _check_signature(sig: str) -> None:
    """Refuse to splice anything but well-formed Signature elements into the packet."""
    wrapper = f'<w xmlns="{NS}" xmlns:{EXPORT_PREFIX}="{NS}">{sig}</w>'.encode("utf-8")
    try:
        parsed = safexml.parse(wrapper, lambda _m: None)
    except EdxmlError as e:
        raise EdxmlError(f"edxml_signature is not well-formed XML: {e}") from None
    if not parsed.root.children or any(c.local != "Signature" for c in parsed.root.children) \
            or parsed.root.text.strip():
        raise EdxmlError("edxml_signature must hold Signature element(s) only")


def _header_tail(w: _W, msg: pb.Document | pb.Status, pairs: list[Entry],
                 business: pb.Business | None) -> None:
    if pairs or business is not None:
        w.open(_P + "TraceHeaderList")
        for organ_id, ts in pairs:
            w.open(_P + "TraceHeader")
            if organ_id is not None:
                w.leaf(_P + "OrganId", organ_id)
            if ts is not None:
                w.leaf(_P + "Timestamp", ts)
            w.close()
        if business is not None:
            _business(w, business)
        w.close()
    if msg.edxml_signature:
        _check_signature(msg.edxml_signature)
        w.raw(msg.edxml_signature)


def _business(w: _W, b: pb.Business) -> None:
    w.open(_P + "Bussiness")
    if b.document_id:
        w.leaf(_P + "DocumentId", b.document_id)
    w.leaf(_P + "BussinessDocType", str(b.business_doc_type))
    w.fields(b, (("BussinessDocReason", "business_doc_reason"), ("Paper", "paper")))
    if b.document_info or b.document_receiver or b.receivers:
        w.open(_P + "BussinessDocumentInfo")
        w.fields(b, (("DocumentInfo", "document_info"), ("DocumentReceiver", "document_receiver")))
        if b.receivers:
            w.open(_P + "ReceiverList")
            for r in b.receivers:
                w.group(_P + "Receiver", r, _RECEIVER)
            w.close()
        w.close()
    if b.replacements:
        w.open(_P + "ReplacementInfoList")
        for r in b.replacements:
            w.open(_P + "ReplacementInfo")
            if r.document_id:
                w.leaf(_P + "DocumentId", r.document_id)
            if r.organ_ids:
                w.open(_P + "OrganIdList")
                for o in r.organ_ids:
                    w.leaf(_P + "OrganId", o)
                w.close()
            w.close()
        w.close()
    if b.HasField("staff_info"):
        w.group(_P + "StaffInfo", b.staff_info, _STAFF_BUSINESS)
    w.close()


def _document(w: _W, d: pb.Document, pairs: list[Entry]) -> None:
    if not d.HasField("from_organ"):
        raise EdxmlError("Document.from_organ is required (edXML MessageHeader/From)")
    w.open(_P + "MessageHeader")
    w.group(_P + "From", d.from_organ, _ORG_DOC)
    for t in d.to:
        w.group(_P + "To", t, _ORG_DOC)
    w.fields(d, (("DocumentId", "document_id"),))
    for field, tag, spec in (("code", "Code", _CODE), ("promulgation_info", "PromulgationInfo", _PROMULGATION),
                             ("document_type", "DocumentType", _DOCTYPE)):
        if d.HasField(field):
            w.group(_P + tag, getattr(d, field), spec)
    w.fields(d, (("Subject", "subject"), ("Content", "content")))
    if d.HasField("signer_info"):
        w.group(_P + "SignerInfo", d.signer_info, _SIGNER)
    w.fields(d, (("DueDate", "due_date"),))
    if d.HasField("other_info"):
        o = d.other_info
        w.open(_P + "OtherInfo")
        w.leaf(_P + "Priority", str(o.priority))
        w.fields(o, _OTHER)
        if o.appendixes:
            w.open(_P + "Appendixes")
            for a in o.appendixes:
                w.leaf(_P + "Appendix", a)
            w.close()
        w.close()
    for rf in d.response_for:
        w.group(_P + "ResponseFor", rf, _RF_DOC)
    w.leaf(_P + "SteeringType", str(d.steering_type))
    if d.to_places:
        w.open(_P + "ToPlaces")
        for p in d.to_places:
            w.leaf(_P + "Place", p)
        w.close()
    w.close()
    _header_tail(w, d, pairs, d.business if d.HasField("business") else None)
    w.close()  # edXMLHeader
    w.open(_P + "edXMLBody")
    w.open(_P + "edXMLManifest", ' version="1.0"')
    for a in d.attachments:
        w.open(_P + "Reference")
        m = a.manifest if a.HasField("manifest") else None  # the Reference as it came, where it differed
        # its ContentId only if it still names this Attachment (import matches without a `cid:` prefix)
        cid = m.content_id if m is not None and bare_cid(m.content_id) == bare_cid(a.content_id) else a.content_id
        w.leaf(_P + "ContentId", cid)
        for tag, attr in (("ContentType", "content_type"), ("Description", "description"), ("AttachmentName", "name")):
            if m is None:
                w.leaf(_P + tag, getattr(a, attr))
            elif m.HasField(attr):
                w.leaf(_P + tag, getattr(m, attr))
        w.close()
    w.close()
    w.close()  # edXMLBody
    w.close()  # edXMLEnvelope
    w.open("AttachmentEncoded")
    for a in d.attachments:
        w.open("Attachment")
        for tag, value in (("ContentId", a.content_id), ("AttachmentName", a.name),
                           ("Description", a.description), ("ContentType", a.content_type)):
            w.leaf(tag, value)
        encoded = a.encoded_text if a.encoded_text and not a.data else base64.b64encode(a.data).decode("ascii")
        w.leaf(_P + "ContentTransferEncoded", encoded, f' xmlns:{EXPORT_PREFIX}="{NS}"')
        w.close()
    w.close()


def _status(w: _W, s: pb.Status, pairs: list[Entry]) -> None:
    if not s.HasField("from_organ"):
        raise EdxmlError("Status.from_organ is required (edXML MessageHeader/From)")
    w.open(_P + "MessageHeader")
    w.group(_P + "From", s.from_organ, _ORG_STATUS)
    if s.HasField("response_for"):
        w.group(_P + "ResponseFor", s.response_for, _RF_STATUS)
    if s.HasField("staff_info"):
        w.group(_P + "StaffInfo", s.staff_info, _STAFF_STATUS)
    w.leaf(_P + "StatusCode", s.status_code)
    w.fields(s, (("Description", "description"), ("Timestamp", "timestamp")))
    w.close()
    _header_tail(w, s, pairs, None)
    w.close()  # edXMLHeader
    w.close()  # edXMLEnvelope


def export_edxml(msg: pb.Document | pb.Status, trace: list[tuple[str, str]] | None = None, *,
                 hops: list[tuple[str, str]] = ()) -> bytes:
    """Write `msg` as a UTF-8 edXML packet laid out like the QCVN 102:2016 samples.

    What was imported is written back as it came: `msg.edxml_trace` entry by entry (an
    absent OrganId stays absent, timestamps keep their text), the manifest's References
    where they differed from their Attachments, attachment text that was not base64.
    `hops` — (organ id, "yyyy/MM/dd HH:mm:ss") pairs this node adds, e.g. the path it
    verified — are appended after it, and must be well-formed (EdxmlError otherwise).
    `trace`, when given, is instead the complete TraceHeader list (pairs, checked the same
    way) and replaces `msg.edxml_trace`.
    The Signature block is written back verbatim: it is carried for the record, and
    will only verify if the signer's canonical form is unchanged by this re-serialisation.
    """
    if not isinstance(msg, (pb.Document, pb.Status)):
        raise TypeError(f"expected Document or Status, not {type(msg).__name__}")
    pairs = _trace_entries(msg, trace, list(hops))
    w = _W()
    w.open("edXML", f' xmlns="{NS}"')
    w.open(_P + "edXMLEnvelope", f' xmlns:{EXPORT_PREFIX}="{NS}"')
    w.open(_P + "edXMLHeader")
    if isinstance(msg, pb.Document):
        _document(w, msg, pairs)
    else:
        _status(w, msg, pairs)
    w.close()  # edXML
    return w.result()
