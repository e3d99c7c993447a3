"""Property: packets written the many ways the field writes them import to the document they describe,
and export → import gives that document back unchanged.

Each example is a random `pb.Document` (Vietnamese text with markup characters, CR, LF and tabs; optional
elements absent or present but empty; several To; 0-5 attachments whose manifest References agree, carry
a `cid:` prefix the Attachment lacks, name another type, or are missing; TraceHeaders without OrganId),
written by this test's own writer in one of five namespace styles (the samples' `edXML:` prefix, a default
namespace, another prefix, no namespace, an `edXML:` prefix nobody declares), with text escaped or in
CDATA, LF or CRLF line ends, and MessageHeader children in any order. Bounded and derandomized: the same
examples every run, in a few seconds.
"""
from __future__ import annotations

import base64

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.edxml import export_edxml, import_edxml
from node.pb import envelope_pb2 as pb

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
STYLES = ("samples", "default", "other", "none", "undeclared")
ALPHABET = ("aăâbcdđeêghiklmnoôơpqrstuưvxyAĂÂĐÊÔƠƯ "
            "àáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ"
            "\u0301\u0323"  # combining marks: text in NFD, as some software writes it
            "0123456789 .,;:/-()\"'<>&]\t\n\r😀")
CASES = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

text = st.text(alphabet=ALPHABET, max_size=24)
word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.", min_size=1, max_size=12)
date = st.builds(lambda y, m, d: f"{y:04d}/{m:02d}/{d:02d}", st.integers(1990, 2030), st.integers(1, 12),
                 st.integers(1, 28))
moment = st.builds(lambda d, h, m: f"{d} {h:02d}:{m:02d}:00", date, st.integers(0, 23), st.integers(0, 59))


def _msg(cls, fields: dict):
    return st.fixed_dictionaries({}, optional={k: v for k, v in fields.items()}).map(lambda kw: cls(**kw))


ORG = {"organ_id": word, "organization_in_charge": text, "organ_name": text, "organ_add": text, "email": text,
       "telephone": text, "fax": text, "website": text}
organization = _msg(pb.Organization, ORG)
trace = _msg(pb.EdxmlTrace, {"organ_id": st.one_of(word, st.just("null"), st.just("")), "timestamp": moment})


@st.composite
def attachments(draw) -> list[tuple[pb.Attachment, str]]:
    out = []
    for i in range(draw(st.integers(0, 5))):
        cid = f"{draw(st.sampled_from(['', 'cid:']))}{i}-{draw(word)}"
        a = pb.Attachment(content_id=cid, name=draw(text), description=draw(text),
                          content_type=draw(st.sampled_from(["application/pdf", "application/zip", "text/plain", ""])),
                          data=draw(st.binary(max_size=120)))
        out.append((a, draw(st.sampled_from(["same", "same", "cid", "type", "absent", "only-id"]))))
    return out


@st.composite
def documents(draw) -> tuple[pb.Document, list[tuple[pb.Attachment, str]]]:
    d = pb.Document(from_organ=draw(organization), to=draw(st.lists(organization, min_size=1, max_size=3)))
    for attr in ("document_id", "subject", "content", "due_date"):
        if draw(st.booleans()):
            setattr(d, attr, draw(text))
    for field, value in (("code", _msg(pb.DocCode, {"code_number": word, "code_notation": text})),
                         ("promulgation_info", _msg(pb.PromulgationInfo, {"place": text, "promulgation_date": date})),
                         ("document_type", _msg(pb.DocumentType, {"type": word, "type_detail": word, "type_name": text})),
                         ("signer_info", _msg(pb.SignerInfo, {"competence": text, "position": text, "full_name": text})),
                         ("other_info", _msg(pb.OtherInfo, {
                             "priority": st.integers(0, 4), "sphere_of_promulgation": text, "typer_notation": text,
                             "promulgation_amount": word, "page_amount": word, "direction": word,
                             "appendixes": st.lists(text, max_size=2)})),
                         ("business", _msg(pb.Business, {
                             "document_id": text, "business_doc_type": st.integers(0, 3), "business_doc_reason": text,
                             "paper": word, "staff_info": _msg(pb.StaffInfo, {"department": text, "staff": text,
                                                                              "email": text, "mobile": word})}))):
        if draw(st.booleans()):
            getattr(d, field).CopyFrom(draw(value))
    d.to_places.extend(draw(st.lists(text, max_size=2)))
    d.response_for.extend(draw(st.lists(_msg(pb.ResponseFor, {"organ_id": word, "code": text,
                                                               "promulgation_date": date, "document_id": text}),
                                        max_size=2)))
    d.steering_type = draw(st.integers(0, 2))
    d.edxml_trace.extend(draw(st.lists(trace, max_size=3)))
    atts = draw(attachments())
    for a, mode in atts:
        kept = d.attachments.add()
        kept.CopyFrom(a)
        ref = _reference(a, mode)
        if ref is not None and any(getattr(ref, f.name) != getattr(a, f.name) for f, _ in ref.ListFields()):
            kept.manifest.CopyFrom(ref)  # what the node keeps: the Reference as it came, where it differed
    return d, atts


def _reference(a: pb.Attachment, mode: str) -> pb.ManifestReference | None:
    if mode == "absent":
        return None
    if mode == "only-id":
        return pb.ManifestReference(content_id=a.content_id)
    cid = a.content_id[4:] if a.content_id.startswith("cid:") else "cid:" + a.content_id
    return pb.ManifestReference(content_id=cid if mode == "cid" else a.content_id,
                                content_type="text/x-other" if mode == "type" else a.content_type,
                                description=a.description, name=a.name)


class Writer:
    """A packet as other software might write it; independent of node.edxml.export."""

    def __init__(self, draw, style: str) -> None:
        self.draw, self.style = draw, style
        self.nl = draw(st.sampled_from(["\n", "\r\n"]))
        self.cdata = draw(st.booleans())
        self.p = {"samples": "edXML:", "default": "", "other": "q:", "none": "", "undeclared": "edXML:"}[style]
        self.parts: list[str] = []

    def text(self, value: str) -> str:
        if self.cdata and "]]>" not in value and "\r" not in value and value:
            return f"<![CDATA[{value}]]>"
        return (value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;"))

    def leaf(self, name: str, value: str, prefix: str | None = None) -> None:
        p = self.p if prefix is None else prefix
        self.parts.append(f"<{p}{name}>{self.text(value)}</{p}{name}>{self.nl}")

    def open(self, name: str, attrs: str = "", prefix: str | None = None) -> None:
        self.parts.append(f"<{self.p if prefix is None else prefix}{name}{attrs}>{self.nl}")

    def close(self, name: str, prefix: str | None = None) -> None:
        self.parts.append(f"</{self.p if prefix is None else prefix}{name}>{self.nl}")

    def fields(self, msg, spec) -> None:  # noqa: ANN001
        """Set strings always; empty ones sometimes as an empty element, as senders do."""
        for tag, attr in spec:
            value = getattr(msg, attr)
            if value or self.draw(st.booleans()):
                self.leaf(tag, value)

    def group(self, name: str, msg, spec) -> None:  # noqa: ANN001
        self.open(name)
        self.fields(msg, spec)
        self.close(name)


ORG_SPEC = [("OrganId", "organ_id"), ("OrganizationInCharge", "organization_in_charge"), ("OrganName", "organ_name"),
            ("OrganAdd", "organ_add"), ("Email", "email"), ("Telephone", "telephone"), ("Fax", "fax"),
            ("Website", "website")]


def header_items(w: Writer, d: pb.Document) -> list[list[str]]:
    """MessageHeader children, each kind as its own list of text parts (so they can be shuffled)."""
    items = []

    def item(fn) -> None:  # noqa: ANN001
        w.parts = []
        fn()
        items.append(w.parts)

    item(lambda: w.group("From", d.from_organ, ORG_SPEC))
    item(lambda: [w.group("To", t, ORG_SPEC) for t in d.to])  # repeated elements keep their order
    for attr, tag in (("document_id", "DocumentId"), ("subject", "Subject"), ("content", "Content"),
                      ("due_date", "DueDate")):
        if getattr(d, attr) or w.draw(st.booleans()):
            item(lambda attr=attr, tag=tag: w.leaf(tag, getattr(d, attr)))
    for field, tag, spec in (("code", "Code", [("CodeNumber", "code_number"), ("CodeNotation", "code_notation")]),
                             ("promulgation_info", "PromulgationInfo",
                              [("Place", "place"), ("PromulgationDate", "promulgation_date")]),
                             ("document_type", "DocumentType",
                              [("Type", "type"), ("TypeDetail", "type_detail"), ("TypeName", "type_name")]),
                             ("signer_info", "SignerInfo",
                              [("Competence", "competence"), ("Position", "position"), ("FullName", "full_name")])):
        if d.HasField(field):
            item(lambda field=field, tag=tag, spec=spec: w.group(tag, getattr(d, field), spec))
    if d.HasField("other_info"):
        def other() -> None:
            o = d.other_info
            w.open("OtherInfo")
            if o.priority or w.draw(st.booleans()):
                w.leaf("Priority", f"{w.draw(st.sampled_from(['', ' ']))}{o.priority}")
            w.fields(o, [("SphereOfPromulgation", "sphere_of_promulgation"), ("TyperNotation", "typer_notation"),
                         ("PromulgationAmount", "promulgation_amount"), ("PageAmount", "page_amount"),
                         ("Direction", "direction")])
            if o.appendixes:
                w.open("Appendixes")
                for a in o.appendixes:
                    w.leaf("Appendix", a)
                w.close("Appendixes")
            w.close("OtherInfo")
        item(other)
    item(lambda: [w.group("ResponseFor", rf, [("OrganId", "organ_id"), ("Code", "code"),
                                              ("PromulgationDate", "promulgation_date"), ("DocumentId", "document_id")])
                  for rf in d.response_for])
    if d.steering_type or w.draw(st.booleans()):
        item(lambda: w.leaf("SteeringType", str(d.steering_type)))
    if d.to_places or w.draw(st.booleans()):
        def places() -> None:
            w.open("ToPlaces")
            for p in d.to_places:
                w.leaf("Place", p)
            w.close("ToPlaces")
        item(places)
    return items


def write(draw, d: pb.Document, atts: list[tuple[pb.Attachment, str]], style: str) -> bytes:
    w = Writer(draw, style)
    items = header_items(w, d)
    order = draw(st.permutations(range(len(items))))
    out: list[str] = []
    decl = {"samples": f' xmlns="{NS}"', "default": f' xmlns="{NS}"', "other": f' xmlns:q="{NS}"', "none": "",
            "undeclared": ""}[style]
    root_p = "q:" if style == "other" else ""
    env_decl = f' xmlns:edXML="{NS}"' if style == "samples" else ""
    out.append(f'<?xml version="1.0" encoding="UTF-8"?>{w.nl}<{root_p}edXML{decl}>{w.nl}')
    out.append(f"<{w.p}edXMLEnvelope{env_decl}>{w.nl}<{w.p}edXMLHeader>{w.nl}<{w.p}MessageHeader>{w.nl}")
    for i in order:
        out.extend(items[i])
    out.append(f"</{w.p}MessageHeader>{w.nl}")
    if d.edxml_trace or d.HasField("business"):
        w.parts = []
        w.open("TraceHeaderList")
        for t in d.edxml_trace:
            w.open("TraceHeader")
            if t.HasField("organ_id"):
                w.leaf("OrganId", t.organ_id)
            if t.HasField("timestamp"):
                w.leaf("Timestamp", t.timestamp)
            w.close("TraceHeader")
        if d.HasField("business"):
            b = d.business
            w.open("Bussiness")
            w.fields(b, [("DocumentId", "document_id")])
            w.leaf("BussinessDocType", str(b.business_doc_type))
            w.fields(b, [("BussinessDocReason", "business_doc_reason"), ("Paper", "paper")])
            if b.HasField("staff_info"):
                w.group("StaffInfo", b.staff_info, [("Department", "department"), ("Staff", "staff"),
                                                    ("Email", "email"), ("Mobile", "mobile")])
            w.close("Bussiness")
        w.close("TraceHeaderList")
        out.extend(w.parts)
    out.append(f"</{w.p}edXMLHeader>{w.nl}")
    w.parts = []
    if atts or draw(st.booleans()):
        w.open("edXMLBody")
        w.open("edXMLManifest", ' version="1.0"')
        for a, mode in atts:
            ref = _reference(a, mode)
            if ref is None:
                continue
            w.open("Reference")
            for tag, attr in (("ContentId", "content_id"), ("ContentType", "content_type"),
                              ("Description", "description"), ("AttachmentName", "name")):
                if ref.HasField(attr):
                    w.leaf(tag, getattr(ref, attr))
            w.close("Reference")
        w.close("edXMLManifest")
        w.close("edXMLBody")
    w.close("edXMLEnvelope")
    att_p = "" if style in ("samples", "default", "none") else w.p  # the samples leave AttachmentEncoded unprefixed
    if atts:
        w.open("AttachmentEncoded", prefix=att_p)
        for a, _ in atts:
            w.open("Attachment", prefix=att_p)
            for tag, attr in (("ContentId", "content_id"), ("AttachmentName", "name"), ("Description", "description"),
                              ("ContentType", "content_type")):
                w.leaf(tag, getattr(a, attr), prefix=att_p)
            b64 = base64.b64encode(a.data).decode()
            if draw(st.booleans()):
                b64 = w.nl.join(b64[i:i + 76] for i in range(0, len(b64), 76))
            w.parts.append(f"<{att_p}ContentTransferEncoded>{b64}</{att_p}ContentTransferEncoded>{w.nl}")
            w.close("Attachment", prefix=att_p)
        w.close("AttachmentEncoded", prefix=att_p)
    out.extend(w.parts)
    out.append(f"</{root_p}edXML>{w.nl}")
    return "".join(out).encode("utf-8")


@st.composite
def packets(draw) -> tuple[bytes, pb.Document, str]:
    d, atts = draw(documents())
    style = draw(st.sampled_from(STYLES))
    return write(draw, d, atts, style), d, style


@CASES
@given(packets())
def test_generated_packets_import_as_written_and_survive_export(case):
    packet, expected, style = case
    warnings: list[str] = []
    got = import_edxml(packet, warnings=warnings)
    assert got == expected
    if style == "none":
        assert any("without the QCVN 102 namespace" in w for w in warnings)
    if style == "undeclared":
        assert any("prefix 'edXML' is used but never declared" in w for w in warnings)
    out = export_edxml(got)
    again_warnings: list[str] = []
    again = import_edxml(out, warnings=again_warnings)
    assert again == expected
    assert all("differs from" in w for w in again_warnings)  # only the manifest disagreements kept on purpose
    assert export_edxml(again) == out
