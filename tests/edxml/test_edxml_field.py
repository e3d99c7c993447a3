"""Packets other software wrote (the national axis, the national EdXML102 library, gateways, SDKs):
each imports and exports back as it came, or, for the broken template, is refused naming the line.

Through real nodes: tests/documents/test_edxml_field_nodes.py."""
from __future__ import annotations

import base64
import hashlib
import re
import sys
from pathlib import Path

import pytest

from node.edxml import EdxmlError, export_edxml, import_edxml
from node.edxml.wrapping import inner_file, is_wrapped, type_of_label, unwrapped
from node.pb import envelope_pb2 as pb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ is not a package (importlib mode)
from edxml_field import MALFORMED, NAMES, READABLE, SHARED, WRAPPED, raw  # noqa: E402

HOP = ("000.00.00.H41", "2025/01/02 03:04:05")


def load(name: str, warnings: list[str] | None = None) -> pb.Document:
    return import_edxml(raw(name), warnings=[] if warnings is None else warnings)


def test_ten_field_packets_are_here():
    assert len(NAMES) == 10 and MALFORMED in NAMES


@pytest.mark.skipif(not SHARED.is_dir(), reason="no shared/ beside this checkout")
def test_the_vendored_field_packets_are_those_of_shared():
    assert sorted(p.name for p in SHARED.glob("*.edxml")) == NAMES
    for name in NAMES:
        assert raw(name) == (SHARED / name).read_bytes(), name


@pytest.mark.parametrize("name", READABLE)
def test_every_readable_packet_exports_back_as_it_came(name):
    first = load(name)
    assert isinstance(first, pb.Document)
    out = export_edxml(first, hops=[HOP])  # the node's own hop, strictly formed, after the packet's trace
    again = import_edxml(out, warnings=[])
    assert [(t.organ_id, t.timestamp) for t in again.edxml_trace][-1] == HOP
    del again.edxml_trace[-1]
    assert again == first  # every field, trace presence, manifest References, attachment bytes
    assert export_edxml(again, hops=[HOP]) == out


def test_the_broken_template_is_refused_with_the_line_and_what_is_wrong():
    with pytest.raises(EdxmlError) as e:
        load(MALFORMED)
    assert (e.value.line, e.value.column) == (74, 9)
    assert str(e.value) == ("malformed XML at line 74, column 9: mismatched tag: </edXML:MessageHeader> where "
                            "<edXML:From> opened at line 7, column 9 should be closed")


# ---- the axis -----------------------------------------------------------------------------------

def test_a_trace_header_with_only_a_timestamp_stays_so():
    d = load("axis_2025_knobstick.edxml")
    t = d.edxml_trace
    assert [(x.HasField("organ_id"), x.organ_id, x.timestamp) for x in t] == [
        (True, "020100107370", "2025/10/13 10:25:18"), (False, "", "2025/10/13 10:27:35"),
        (True, "02.29.W00", "2025/10/13 10:40:04")]
    out = export_edxml(d, hops=[HOP]).decode()
    assert re.search(r"<edXML:TraceHeader>\s*<edXML:Timestamp>2025/10/13 10:27:35</edXML:Timestamp>\s*"
                     r"</edXML:TraceHeader>", out)
    assert out.count("<edXML:TraceHeader>") == 4


def test_corporation_code_two_to_for_one_ministry_and_an_organ_id_of_null_are_kept():
    d = load("axis_2025_knobstick.edxml")
    assert d.from_organ.organ_id == "020100107370"
    assert [(t.organ_id, t.organ_name) for t in d.to] == [("G12", "Bộ Tài chính"),
                                                          ("000.00.00.G12", "Bộ tài chính (Mã cũ) (qd20)")]
    assert d.document_id == "020100107370,2025/10/13,2440/PLX-HĐQT"
    n = load("axis_2025_null_organid.edxml")
    assert [(x.organ_id, x.HasField("organ_id")) for x in n.edxml_trace] == [("null", True), ("", False)]
    assert n.from_organ.organ_id == "vxp.saas.03" and not n.from_organ.organ_name


def test_empty_response_for_and_signature_are_kept():
    data = raw("axis_2019_signature.edxml")
    d = load("axis_2019_signature.edxml")
    assert len(d.response_for) == 1 and d.response_for[0] == pb.ResponseFor()
    start, end = data.index(b"<Signature>"), data.index(b"</Signature>") + len(b"</Signature>")
    assert d.edxml_signature == data[start:end].decode()
    assert data[start:end] in export_edxml(d)


# ---- manifests ----------------------------------------------------------------------------------

def test_cid_prefix_is_compared_without_it_and_both_forms_go_back_out():
    d = load("ts_builder_cid_prefix.edxml")
    [a] = d.attachments
    assert a.content_id == "00000000-0000-0000-0000-000000000001" and a.data.startswith(b"%PDF-1.4")
    assert a.manifest.content_id == "cid:00000000-0000-0000-0000-000000000001"
    out = export_edxml(d).decode()
    assert "<edXML:ContentId>cid:00000000-0000-0000-0000-000000000001</edXML:ContentId>" in out
    assert "<ContentId>00000000-0000-0000-0000-000000000001</ContentId>" in out
    assert d.subject == 'V/v báo cáo tình hình "thực hiện" <Đề án> & kế hoạch năm 2025'


def test_a_manifest_that_disagrees_is_kept_with_a_warning():
    warnings: list[str] = []
    d = load("sdk_upload_type_mismatch.edxml", warnings)
    assert [(a.content_type, a.manifest.content_type, a.manifest.HasField("description")) for a in d.attachments] == [
        ("application/zip", "text/plain", False)] * 2
    assert len(warnings) == 2 and all("'text/plain' differs" in w and "zip wrapping" in w for w in warnings)
    out = export_edxml(d).decode()
    assert out.count("<edXML:ContentType>text/plain</edXML:ContentType>") == 2
    assert out.count("<ContentType>application/zip</ContentType>") == 2


def test_a_reference_no_attachment_carries_is_still_refused():
    data = raw("ts_builder_cid_prefix.edxml").replace(b"<ContentId>00000000", b"<ContentId>10000000")
    with pytest.raises(EdxmlError, match=r"Reference \(line 74\): manifest lists 'cid:00000000-"):
        import_edxml(data)


# ---- layouts and prefixes -----------------------------------------------------------------------

def test_the_gateway_layout_is_mapped_onto_an_attachment():
    warnings: list[str] = []
    d = load("gateway_attachments_layout.edxml", warnings)
    [a] = d.attachments
    assert (a.content_id, a.name, a.content_type, a.data) == ("cid:edXMLAttachments-1", "1760427207626_b.txt",
                                                              "text/plain", b"b")
    assert any("edXMLAttachments/Attachment (line 41): a gateway's layout" in w for w in warnings)
    out = export_edxml(d)
    assert b"<AttachmentEncoded>" in out and b"AttachmentData" not in out
    assert import_edxml(out, warnings=[]) == d


def test_base64_in_an_element_the_node_does_not_know_is_refused_never_dropped():
    data = raw("gateway_attachments_layout.edxml").replace(b"edXMLAttachments>", b"edXMLFiles>")
    with pytest.raises(EdxmlError, match=r"edXMLFiles/Attachment/AttachmentData \(line 45\): unknown element carries "
                                         r"base64 data \(4 characters\); refused rather than dropped"):
        import_edxml(data)
    # a second ContentTransferEncoded would be dropped: refused too
    data = raw("ts_builder_cid_prefix.edxml").replace(b"<AttachmentName>BC_125",
                                                      b"<ContentTransferEncoded>QUJD</ContentTransferEncoded>"
                                                      b"<AttachmentName>BC_125")
    with pytest.raises(EdxmlError, match=r"ContentTransferEncoded\[2\] \(line \d+\): occurrence 2"):
        import_edxml(data)
    # words and digests are not files: warned about, as before
    warnings: list[str] = []
    import_edxml(raw("ts_builder_cid_prefix.edxml").replace(
        b"<edXML:DigitalSignature />", b"<edXML:Flag>true</edXML:Flag><edXML:Sha>" + b"ab" * 32 + b"</edXML:Sha>"),
        warnings=warnings)
    assert sum("unknown element ignored" in w for w in warnings) == 2


def test_an_undeclared_prefix_is_recovered_with_a_warning_naming_it():
    warnings: list[str] = []
    d = load("sdk_undeclared_xlink.edxml", warnings)
    assert warnings[0].startswith("line 116, column 9: prefix 'xlink' is used but never declared")
    assert warnings[1].startswith("line 125, column 3: prefix 'edXML' is used but never declared")
    assert any("Reference: attribute(s) xlink:href ignored" in w for w in warnings)
    assert d.from_organ.organ_id == "002.00.20.H13" and d.document_id == "9fbfbad2-f1f8-4256-a2eb-50fb1061cddb"
    # ... and the template text where base64 belongs is kept as sent, with a warning, not guessed at
    [a] = d.attachments
    assert (a.data, a.encoded_text) == (b"", "${__StringFromFile(test.txt,,,)}")
    assert any("ContentTransferEncoded (line 130): not base64" in w for w in warnings)
    assert b">${__StringFromFile(test.txt,,,)}</edXML:ContentTransferEncoded>" in export_edxml(d)


def test_strictness_stays_where_it_matters():
    with pytest.raises(EdxmlError, match=r"line 2, column \d+: DOCTYPE declaration <!DOCTYPE edXML> refused"):
        import_edxml(b'<?xml version="1.0"?>\n<!DOCTYPE edXML [<!ENTITY x "y">]>\n<edXML/>')
    with pytest.raises(EdxmlError, match="unbound prefix 'a:b'|malformed XML at line 1"):
        import_edxml(b"<edXML><a:b:c/></edXML>")
    # an undeclared prefix in a broken packet: the break is still named, at its real column ('y' of </y>)
    with pytest.raises(EdxmlError, match=r"line 1, column 20: mismatched tag: </y> where <x> opened at line 1, "
                                         r"column 14 should be closed"):
        import_edxml(b"<edXML><q:a/><x> </y></edXML>")


# ---- the national library's zip wrapping ---------------------------------------------------------

@pytest.mark.parametrize("name", sorted(WRAPPED))
def test_the_inner_file_is_recognised(name):
    d = load(name)
    expected = {i for i, *_ in WRAPPED[name]}
    assert {i for i, a in enumerate(d.attachments) if is_wrapped(a)} == expected
    for i, inner_name, inner_type, sha in WRAPPED[name]:
        inner = inner_file(d.attachments[i], max_size=1 << 20)
        assert (inner.name, inner.content_type, hashlib.sha256(inner.data).hexdigest()) == (inner_name, inner_type, sha)
    view = unwrapped(d, budget=1 << 20)
    for i, inner_name, inner_type, sha in WRAPPED[name]:
        a, original = view.attachments[i], d.attachments[i]
        assert (a.name, a.content_type, hashlib.sha256(a.data).hexdigest()) == (inner_name, inner_type, sha)
        assert a.unwrapped_from.sha256 == hashlib.sha256(original.data).digest()
        assert a.unwrapped_from.content_type == original.content_type and a.content_id == original.content_id
    assert d == load(name)  # the document itself keeps its wrapper


def test_inner_files_by_their_bytes():
    assert inner_file(load("sdk_upload_type_mismatch.edxml").attachments[0], 64).data == b"META A"
    assert inner_file(load("library_zip_wrapped.edxml").attachments[0], 64).data == \
        "Hello QCVN 102 attachment - Xin chào\n".encode()
    assert inner_file(load("library_three_recipients.edxml").attachments[0], 1 << 20).data == raw(MALFORMED)


def test_what_is_not_the_wrapping_is_left_alone():
    d = load("axis_2025_knobstick.edxml")
    assert not is_wrapped(d.attachments[0])  # a PDF as it is
    a = pb.Attachment(name="x.doc", data=d.attachments[1].data)
    assert inner_file(a, max_size=100) is None  # 122,368 bytes inside: over the budget, handed over wrapped
    assert unwrapped(pb.Document(attachments=[a]), budget=100).attachments[0] == a
    zipped_by_a_person = pb.Attachment(name="hồ sơ.zip", data=d.attachments[1].data)
    assert not is_wrapped(zipped_by_a_person)  # a .zip the agency made, holding a .doc
    assert not is_wrapped(pb.Attachment(name="x.doc", data=b"PK\x03\x04 not a zip"))


def test_gateway_type_labels():
    assert type_of_label("TXT", "a.bin") == "text/plain"
    assert type_of_label("application/pdf", "a.txt") == "application/pdf"
    assert type_of_label("", "a.docx").startswith("application/vnd.openxmlformats")
    assert type_of_label("???", "noext") == "application/octet-stream"


def test_every_attachment_byte_is_the_decoded_base64():
    for name in READABLE:
        data = raw(name)
        blocks = re.findall(rb"<(?:edXML:)?(?:ContentTransferEncoded|AttachmentData)[^>]*>([^<]*)<", data)
        d = load(name)
        for a, b64 in zip(d.attachments, blocks, strict=True):
            try:
                decoded = base64.b64decode(b"".join(b64.split()), validate=True)
            except ValueError:
                decoded = b""
            assert a.data == decoded, name
