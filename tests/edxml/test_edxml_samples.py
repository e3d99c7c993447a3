"""The 13 real edXML packets: import, field values, and import → export → import stability."""
from __future__ import annotations

import base64
import re
import sys
from pathlib import Path

import pytest

from node.edxml import export_edxml, import_edxml
from node.pb import envelope_pb2 as pb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ is not a package (importlib mode)
from edxml_samples import NAMES, SHARED, raw  # noqa: E402


SAMPLES = NAMES
DOCS = [n for n in SAMPLES if n.startswith("edoc_")]
STATUSES = [n for n in SAMPLES if n.startswith("status_")]


def load(name: str, warnings: list[str] | None = None) -> pb.Document | pb.Status:
    return import_edxml(raw(name), warnings=[] if warnings is None else warnings)


def test_all_thirteen_samples_are_present():
    assert len(SAMPLES) == 13 and len(DOCS) == 4 and len(STATUSES) == 9


@pytest.mark.skipif(not SHARED.is_dir(), reason="no shared/ beside this checkout")
def test_the_vendored_samples_are_those_of_shared():
    assert sorted(p.name for p in SHARED.glob("*.edxml")) == SAMPLES
    for name in SAMPLES:
        assert raw(name) == (SHARED / name).read_bytes(), name


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_imports_with_the_right_kind(name):
    warnings: list[str] = []
    msg = load(name, warnings)
    assert isinstance(msg, pb.Document if name.startswith("edoc_") else pb.Status)
    # Every element is understood; the only irregularity is edoc_new's stray bytes.
    if name == "edoc_new.edxml":
        assert len(warnings) == 1 and "stray" in warnings[0]
    else:
        assert warnings == []


@pytest.mark.parametrize("name", SAMPLES)
def test_round_trip_is_stable(name):
    first = load(name)
    out = export_edxml(first)
    assert out.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<edXML xmlns="http://www.mic.gov.vn/TBT/')
    warnings: list[str] = []
    second = import_edxml(out, warnings=warnings)
    assert second == first
    assert warnings == []
    assert export_edxml(second) == out  # the writer is deterministic


@pytest.mark.parametrize("name", DOCS)
def test_attachments_are_the_exact_decoded_bytes(name):
    data = raw(name)
    originals = [base64.b64decode(m) for m in
                 re.findall(rb"<edXML:ContentTransferEncoded[^>]*>([^<]*)</edXML:ContentTransferEncoded>", data)]
    assert originals
    doc = load(name)
    assert [a.data for a in doc.attachments] == originals
    again = import_edxml(export_edxml(doc))
    assert [a.data for a in again.attachments] == originals
    att = doc.attachments[0]
    assert (att.content_id, att.name, att.content_type) == ("cid:209", "1896_QD-TTg_m_294779.doc", "application/zip")
    assert att.description == "1896_QD-TTg_m_294779.doc"
    assert att.data[:2] == b"PK" and len(att.data) == 270823  # 361,100 base64 chars ending "=="


def test_manifest_rebuilt_from_attachments():
    out = export_edxml(load("edoc_update.edxml")).decode()
    ref = re.search(r"<edXML:edXMLManifest version=\"1.0\">\s*<edXML:Reference>(.*?)</edXML:Reference>", out, re.S)
    assert ref and "<edXML:ContentId>cid:209</edXML:ContentId>" in ref.group(1)
    assert "<edXML:AttachmentName>1896_QD-TTg_m_294779.doc</edXML:AttachmentName>" in ref.group(1)


def test_replacement_sample_fields():
    d = load("edoc_replacement.edxml")
    assert d.document_id == "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT"
    assert d.subject == "V/v kết nối, liên thông phần mềm quản lý văn bản"
    assert d.from_organ.organ_id == "000.00.00.G22"
    assert d.from_organ.organ_name == "Văn phòng Chính phủ"
    assert [t.organ_id for t in d.to] == ["000.00.00.H41", "000.00.00.H14", "000.00.00.G17"]
    assert d.to[1].website == "www.caobang.gov.vn"
    assert (d.code.code_number, d.code.code_notation) == ("7816", "VPCP-TTĐT")
    assert (d.promulgation_info.place, d.promulgation_info.promulgation_date) == ("Hà Nội", "2018/09/28")
    assert (d.document_type.type, d.document_type.type_detail, d.document_type.type_name) == ("1", "0", "Công văn")
    assert d.signer_info.full_name == "Nguyen Thanh Phuc"
    assert d.due_date == "2018/09/28"
    assert d.other_info.priority == 0 and d.other_info.page_amount == "22" and d.other_info.direction == "false"
    assert d.other_info.appendixes == ["Công văn về việc kết nối, liên thông phần mềm quản lý văn bản"]
    assert d.to_places == ["Cac bo va co quan ngang bo", "Uy ban nhan dan cac tinh, TP"]
    assert d.steering_type == 1
    assert [(t.organ_id, t.timestamp) for t in d.edxml_trace] == [("000.00.00.G22", "2018/09/28 00:00:00")]
    b = d.business
    assert b.business_doc_type == 3 and b.business_doc_reason == "Văn bản thay thế" and b.paper == "0"
    assert len(b.replacements) == 2
    for r in b.replacements:
        assert r.document_id == "000.00.00.G22,2014/01/30,7806/VPCP-TTĐT"
        assert list(r.organ_ids) == ["000.00.00.H41", "000.00.00.H14"]
    assert b.staff_info.staff == "Nguyễn Thị Ngọc Trâm" and b.staff_info.mobile == "84912000001"


def test_revocation_sample_fields():
    d = load("edoc_revocation.edxml")
    assert d.business.business_doc_type == 1
    assert d.business.business_doc_reason == "Thu hồi văn bản điện tử"
    assert len(d.response_for) == 1
    rf = d.response_for[0]
    assert (rf.organ_id, rf.code, rf.promulgation_date) == ("000.00.00.H14", "267/VPCP-TTĐT", "2018/09/28")
    assert rf.document_id == "000.00.04.G14,2012/08/06,267/VPCP-TTĐT"


def test_update_sample_fields():
    d = load("edoc_update.edxml")
    b = d.business
    assert b.business_doc_type == 2
    assert b.document_id == "000.00.00.G22,2014/02/30,7806/VPCP-TTĐT"
    assert (b.document_info, b.document_receiver) == ("1", "1")
    assert [(r.organ_id, r.receiver_type) for r in b.receivers] == [("000.00.00.H41", "0"), ("000.00.00.H14", "1")]
    assert not b.replacements


def test_new_sample_fields_including_odd_codes_and_whitespace():
    d = load("edoc_new.edxml")
    assert d.business.business_doc_type == 0
    assert d.from_organ.organ_id == "002.00.20.H13"
    assert [t.organ_id for t in d.to] == ["28.22.H17"]
    # Text is kept exactly as sent, including a sender's leading space.
    assert d.to[0].organization_in_charge.startswith(" UBND xã Hòa Sơn")
    assert d.code.code_number == "74fass22"


@pytest.mark.parametrize("name", STATUSES)
def test_status_fields(name):
    s = load(name)
    code = re.search(r"_(\d\d)\.edxml$", name).group(1)
    assert s.status_code == code
    sender, responder = ("000.00.00.G22", "000.00.00.H41") if code == "13" else ("000.00.00.H41", "000.00.00.G22")
    assert s.from_organ.organ_id == sender
    assert s.response_for.organ_id == responder
    assert s.response_for.document_id == "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT"
    assert s.timestamp == "2015/09/20 11:08:36"
    assert s.staff_info.staff == "Nguyen thi ngoc tram" and s.staff_info.email == "ngoctram@nghean.vn"
    assert s.description
    assert not s.edxml_signature and not s.edxml_trace


def test_status_description_text():
    assert load("status_processing_05.edxml").description == "Đang xử lý văn bản đến"
    assert load("status_acceptance_03.edxml").from_organ.fax == "0383 843049"


@pytest.mark.parametrize("name", DOCS)
def test_signature_kept_verbatim(name):
    data = raw(name)
    start = data.index(b"<Signature>")
    end = data.index(b"</Signature>") + len(b"</Signature>")
    d = load(name)
    assert d.edxml_signature == data[start:end].decode("utf-8")
    assert "<SignatureValue>GbVb8n9+qFxz466Ag0sbpVdLPs2R0+9JBekp12UyarAZ" in d.edxml_signature
    out = export_edxml(d)
    assert data[start:end] in out  # written back byte for byte
    # ... inside edXMLHeader, after TraceHeaderList, in the same (QCVN default) namespace context.
    assert out.index(b"</edXML:TraceHeaderList>") < out.index(b"<Signature>") < out.index(b"</edXML:edXMLHeader>")


def test_stray_bytes_of_edoc_new_are_skipped_and_reported():
    data = raw("edoc_new.edxml")
    assert data[:4] == b"1212"
    warnings: list[str] = []
    d = import_edxml(data, warnings=warnings)
    assert len(warnings) == 1 and "4 stray byte" in warnings[0] and "1212" in warnings[0]
    assert d == import_edxml(data[4:])  # same message as the clean packet
    assert not export_edxml(d).startswith(b"1212")


def test_stray_bytes_logged_when_no_warnings_list(caplog):
    with caplog.at_level("WARNING", logger="node.edxml"):
        import_edxml(raw("edoc_new.edxml"))
    assert any("stray byte" in r.getMessage() for r in caplog.records)


def test_trace_argument_replaces_imported_trace():
    d = load("edoc_replacement.edxml")
    own = [(t.organ_id, t.timestamp) for t in d.edxml_trace] + [("000.00.00.H41", "2024/05/06 07:08:09")]
    again = import_edxml(export_edxml(d, trace=own))
    assert [(t.organ_id, t.timestamp) for t in again.edxml_trace] == own
    assert import_edxml(export_edxml(d, trace=[])).edxml_trace == []
    s = load("status_inbox_01.edxml")
    again = import_edxml(export_edxml(s, trace=[("000.00.00.H41", "2015/09/20 11:08:40")]))
    assert [(t.organ_id, t.timestamp) for t in again.edxml_trace] == [("000.00.00.H41", "2015/09/20 11:08:40")]
    again.ClearField("edxml_trace")
    assert again == s
