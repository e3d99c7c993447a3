"""Hostile, broken and irregular packets: DTDs, syntax errors, stray bytes, missing structure."""
from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import pytest

from node.edxml import EdxmlError, export_edxml, import_edxml
from node.pb import envelope_pb2 as pb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ is not a package (importlib mode)
from edxml_samples import raw  # noqa: E402

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
DSIG = "http://www.w3.org/2000/09/xmldsig#"


STATUS = raw("status_inbox_01.edxml")


def status_packet(header_inner: str, extra: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<edXML xmlns="{NS}">\n<edXMLEnvelope>\n<edXMLHeader>\n'
            f"<MessageHeader>\n{header_inner}\n</MessageHeader>\n</edXMLHeader>\n{extra}</edXMLEnvelope>\n"
            "</edXML>\n").encode()


# ---- DTDs and entities --------------------------------------------------------------


def test_doctype_with_external_entity_is_refused():
    data = (b'<?xml version="1.0"?>\n<!DOCTYPE edXML [\n  <!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n'
            b'<edXML xmlns="' + NS.encode() + b'">&xxe;</edXML>')
    with pytest.raises(EdxmlError, match=r"line 2.*DOCTYPE.*refused") as e:
        import_edxml(data)
    assert "root:" not in str(e.value)  # nothing was read from the file
    assert e.value.line == 2


def test_external_dtd_is_refused():
    data = b'<?xml version="1.0"?>\n<!DOCTYPE edXML SYSTEM "http://example.invalid/e.dtd">\n<edXML/>'
    with pytest.raises(EdxmlError, match="DOCTYPE"):
        import_edxml(data)


def test_billion_laughs_is_refused_quickly():
    lol = [b'<!ENTITY lol0 "lol">']
    for i in range(1, 10):
        lol.append(b'<!ENTITY lol%d "%s">' % (i, b"".join(b"&lol%d;" % (i - 1) for _ in range(10))))
    data = b'<?xml version="1.0"?>\n<!DOCTYPE edXML [\n' + b"\n".join(lol) + b"\n]>\n<edXML>&lol9;</edXML>"
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        held, _ = tracemalloc.get_traced_memory()
        with pytest.raises(EdxmlError, match="DOCTYPE.*refused") as e:
            import_edxml(data)
        peak = tracemalloc.get_traced_memory()[1] - held
    finally:
        if not tracing:
            tracemalloc.stop()
    # Refused where the DOCTYPE opens, before a single entity is declared, let alone expanded: the
    # work does not depend on the entities. Refusing only after parsing would have expanded &lol9;
    # to 3 GB of text, or at least to the few MB where expat's own amplification guard stops it
    # (and that is over in well under a second, so a time limit would not notice).
    assert e.value.line == 2
    assert peak < 256 * 1024, f"refusing a 1 KB packet took {peak} bytes at peak"


def test_undeclared_entity_reference_is_malformed():
    with pytest.raises(EdxmlError, match=r"line 1, column \d+: undefined entity"):
        import_edxml(b"<edXML>&xxe;</edXML>")


# ---- syntax errors ----------------------------------------------------------------


def test_malformed_xml_names_line_column_and_problem():
    data = (f'<?xml version="1.0"?>\n<edXML xmlns="{NS}">\n  <edXMLEnvelope>\n  </edXMLEnvelop>\n</edXML>\n'
            ).encode()
    with pytest.raises(EdxmlError) as e:
        import_edxml(data)
    assert str(e.value) == ("malformed XML at line 4, column 5: mismatched tag: </edXMLEnvelop> where "
                            "<edXMLEnvelope> opened at line 3, column 3 should be closed")
    assert (e.value.line, e.value.column) == (4, 5)


def test_truncated_sample_names_the_line():
    data = raw("status_finish_06.edxml")
    cut = data[: data.index(b"<edXML:StatusCode>") + 8]
    with pytest.raises(EdxmlError, match=r"malformed XML at line 28, column \d+: unclosed token"):
        import_edxml(cut)


def test_error_positions_count_the_skipped_stray_bytes():
    data = raw("edoc_new.edxml").replace(b"</edXML:Subject>", b"</edXML:Subjekt>", 1)
    line = data[: data.index(b"</edXML:Subjekt>")].count(b"\n") + 1
    with pytest.raises(EdxmlError, match=rf"line {line}, column \d+: mismatched tag"):
        import_edxml(data)
    # On the first line the column counts the stray bytes too: 'b' of </b> is byte 15 of the input.
    with pytest.raises(EdxmlError, match=r"line 1, column 15: mismatched tag"):
        import_edxml(b"12<edXML><a></b></edXML>")
    with pytest.raises(EdxmlError, match=r"line 3, column 6: mismatched tag"):
        import_edxml(b"1\n2\n<a></b>")


def test_content_after_the_root_is_malformed():
    with pytest.raises(EdxmlError, match="junk after document element"):
        import_edxml(STATUS + b"<extra/>")


# ---- leading bytes policy ---------------------------------------------------------


def test_sixteen_stray_bytes_are_skipped_seventeen_refused():
    warnings: list[str] = []
    assert import_edxml(b"x" * 16 + STATUS, warnings=warnings) == import_edxml(STATUS)
    assert len(warnings) == 1 and "16 stray byte" in warnings[0]
    with pytest.raises(EdxmlError, match="17 bytes before the first '<'"):
        import_edxml(b"x" * 17 + STATUS)


def test_bom_is_skipped_silently_and_may_follow_or_precede_stray_bytes():
    bom = b"\xef\xbb\xbf"
    warnings: list[str] = []
    assert import_edxml(bom + STATUS, warnings=warnings) == import_edxml(STATUS)
    assert warnings == []
    assert import_edxml(bom + b"1212" + STATUS, warnings=warnings) == import_edxml(STATUS)
    assert import_edxml(b"1212" + bom + STATUS, warnings=warnings) == import_edxml(STATUS)
    assert len(warnings) == 2


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_its_byte_order_mark_is_read_as_the_national_library_reads_it(codec):
    """Windows software saves XML as UTF-16 with a BOM, its declaration saying so; the same packet in UTF-8."""
    text = STATUS.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')
    bom = {"utf-16": b"", "utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}[codec]
    warnings: list[str] = []
    assert import_edxml(bom + text.encode(codec), warnings=warnings) == import_edxml(STATUS)
    assert warnings == ["packet is UTF-16 (byte order mark): read as such"]


def test_no_xml_at_all_and_other_wide_encodings_are_refused():
    with pytest.raises(EdxmlError, match="no XML found"):
        import_edxml(b"1212")
    with pytest.raises(EdxmlError, match="no XML found"):
        import_edxml(b"")
    with pytest.raises(EdxmlError, match="UTF-32"):
        import_edxml(STATUS.decode().encode("utf-32"))
    with pytest.raises(EdxmlError, match="UTF-16 byte order mark but is not UTF-16"):
        import_edxml(b"\xff\xfe<\x00\x00\xd8a\x00")  # a lone surrogate
    with pytest.raises(EdxmlError, match="encoding 'UTF-16' not supported"):  # says UTF-16, is not
        import_edxml(STATUS.replace(b'encoding="UTF-8"', b'encoding="UTF-16"'))
    with pytest.raises(EdxmlError, match="encoding 'ISO-8859-1' not supported"):
        import_edxml(STATUS.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"'))
    with pytest.raises(TypeError):
        import_edxml(STATUS.decode())  # type: ignore[arg-type]


# ---- structure --------------------------------------------------------------------


def test_wrong_root_is_refused():
    with pytest.raises(EdxmlError, match="root element is 'Envelope'"):
        import_edxml(b"<Envelope/>")
    with pytest.raises(EdxmlError, match="root element is 'edXML'.*namespace 'urn:other'"):
        import_edxml(b'<edXML xmlns="urn:other"/>')


def test_missing_message_header_names_the_path():
    data = f'<edXML xmlns="{NS}">\n<edXMLEnvelope>\n<edXMLHeader/>\n</edXMLEnvelope>\n</edXML>'.encode()
    with pytest.raises(EdxmlError) as e:
        import_edxml(data)
    assert "missing element edXML/edXMLEnvelope/edXMLHeader/MessageHeader" in str(e.value)
    assert e.value.path == "edXML/edXMLEnvelope/edXMLHeader/MessageHeader" and e.value.line == 3
    with pytest.raises(EdxmlError, match="missing element edXML/edXMLEnvelope$|missing element edXML/edXMLEnvelope "):
        import_edxml(f'<edXML xmlns="{NS}"/>'.encode())


def test_document_without_from_names_the_path():
    data = raw("edoc_update.edxml")
    start, end = data.index(b"<edXML:From>"), data.index(b"</edXML:From>") + len(b"</edXML:From>")
    with pytest.raises(EdxmlError, match="missing element edXML/edXMLEnvelope/edXMLHeader/MessageHeader/From"):
        import_edxml(data[:start] + data[end:])


def test_status_without_from_is_refused():
    with pytest.raises(EdxmlError, match="MessageHeader/From"):
        import_edxml(status_packet("<StatusCode>01</StatusCode>"))


def test_status_code_with_body_is_ambiguous_and_refused():
    with pytest.raises(EdxmlError, match="StatusCode is present.*edXMLBody"):
        import_edxml(status_packet("<From><OrganId>A</OrganId></From><StatusCode>01</StatusCode>",
                                   "<edXMLBody/>\n"))


def test_bad_numbers_name_the_element():
    with pytest.raises(EdxmlError, match=r"MessageHeader/OtherInfo/Priority \(line \d+\): 'high'"):
        import_edxml(status_packet("<From/><OtherInfo><Priority>high</Priority></OtherInfo>"))


def test_text_that_is_not_base64_is_kept_as_sent_with_a_warning_naming_the_element():
    # The national library reads such packets (a field packet carries a template's ${...}): the node
    # neither refuses nor guesses; the attachment has no content and the text goes back out as it came.
    data = raw("edoc_update.edxml")
    i = data.index(b'QCVN_102_2016">UEsDB') + len(b'QCVN_102_2016">')
    warnings: list[str] = []
    d = import_edxml(data[:i] + b"@@" + data[i:], warnings=warnings)
    assert d.attachments[0].data == b"" and d.attachments[0].encoded_text.startswith("@@UEsDB")
    assert any(w.startswith("edXML/AttachmentEncoded/Attachment/ContentTransferEncoded (line 156): not base64")
               for w in warnings)
    assert import_edxml(export_edxml(d), warnings=[]) == d


def test_manifest_reference_without_attachment_is_refused():
    data = raw("edoc_update.edxml").replace(b"<ContentId>cid:209</ContentId>", b"<ContentId>cid:210</ContentId>")
    with pytest.raises(EdxmlError, match="Reference .*manifest lists 'cid:209' but no Attachment carries it"):
        import_edxml(data)


def test_manifest_disagreement_and_unknown_elements_are_warned_not_dropped_silently():
    data = raw("edoc_update.edxml")
    data = data.replace(b"<edXML:Description>1896_QD", b"<edXML:Description>other_QD", 1)
    data = data.replace(b"<edXML:DueDate>", b"<edXML:Vendor>x</edXML:Vendor><edXML:DueDate>", 1)
    data = data.replace(b"<edXML:Subject>", b'<edXML:Subject lang="vi">', 1)
    warnings: list[str] = []
    d = import_edxml(data, warnings=warnings)
    assert d.attachments[0].description == "1896_QD-TTg_m_294779.doc"
    assert any("Reference/Description" in w and "differs" in w for w in warnings)
    assert any("MessageHeader/Vendor: unknown element ignored" in w for w in warnings)
    assert any("MessageHeader/Subject: attribute(s) lang ignored" in w for w in warnings)
    assert len(warnings) == 3


def test_duplicate_singletons_keep_the_first_with_a_warning():
    warnings: list[str] = []
    s = import_edxml(status_packet("<From><OrganId>A</OrganId></From><From><OrganId>B</OrganId></From>"
                                   "<StatusCode>01</StatusCode>"), warnings=warnings)
    assert s.from_organ.organ_id == "A"
    assert any("From: 2 occurrences" in w for w in warnings)


# ---- namespaces and prefixes --------------------------------------------------------


@pytest.mark.parametrize("name", ["edoc_replacement.edxml", "status_rejection_02.edxml"])
def test_any_prefix_is_accepted(name):
    data = raw(name)
    other = data.replace(b"edXML:", b"q:").replace(b"xmlns:edXML=", b"xmlns:q=")
    assert other != data
    assert import_edxml(other) == import_edxml(data)


def test_missing_namespace_is_tolerated_with_a_warning():
    warnings: list[str] = []
    bare = (STATUS.replace(f' xmlns="{NS}"'.encode(), b"").replace(f' xmlns:edXML="{NS}"'.encode(), b"")
            .replace(b"edXML:", b""))
    assert b"xmlns" not in bare
    s = import_edxml(bare, warnings=warnings)
    assert s == import_edxml(STATUS)
    assert any("without the QCVN 102 namespace" in w for w in warnings)


def test_foreign_namespace_elements_are_not_taken_for_edxml():
    warnings: list[str] = []
    s = import_edxml(status_packet('<From><OrganId>A</OrganId></From><StatusCode>01</StatusCode>'
                                   '<x:Description xmlns:x="urn:x">no</x:Description>'), warnings=warnings)
    assert s.description == ""
    assert any("namespace urn:x" in w for w in warnings)


# ---- Signature ----------------------------------------------------------------------


def test_xmldsig_signature_with_inherited_prefix_gets_its_declaration():
    data = (f'<e:edXML xmlns:e="{NS}" xmlns:ds="{DSIG}"><e:edXMLEnvelope><e:edXMLHeader>'
            '<e:MessageHeader><e:From><e:OrganId>A</e:OrganId></e:From><e:StatusCode>01</e:StatusCode>'
            '</e:MessageHeader><ds:Signature Id="a&gt;b"><ds:SignedInfo/><ds:SignatureValue>AA==</ds:SignatureValue>'
            "</ds:Signature></e:edXMLHeader></e:edXMLEnvelope></e:edXML>").encode()
    s = import_edxml(data)
    assert s.edxml_signature == (f'<ds:Signature xmlns:ds="{DSIG}" Id="a&gt;b"><ds:SignedInfo/>'
                                 "<ds:SignatureValue>AA==</ds:SignatureValue></ds:Signature>")
    out = export_edxml(s)
    assert s.edxml_signature.encode() in out
    assert import_edxml(out) == s


def test_unqualified_signature_outside_default_namespace_stays_unqualified():
    data = (f'<e:edXML xmlns:e="{NS}"><e:edXMLEnvelope><e:edXMLHeader><e:MessageHeader>'
            "<e:From/><e:StatusCode>01</e:StatusCode></e:MessageHeader><Signature><X/></Signature>"
            "</e:edXMLHeader></e:edXMLEnvelope></e:edXML>").encode()
    s = import_edxml(data, warnings=[])
    assert s.edxml_signature == '<Signature xmlns=""><X/></Signature>'
    assert import_edxml(export_edxml(s), warnings=[]) == s


def test_export_refuses_a_signature_that_is_not_signature_xml():
    d = import_edxml(STATUS)
    for bad in ("<Signature><a></Signature>", "<Other/>", "text", "<Signature/>junk"):
        d.edxml_signature = bad
        with pytest.raises(EdxmlError, match="edxml_signature"):
            export_edxml(d)
    d.edxml_signature = "<Signature/>\n<Signature/>"
    assert import_edxml(export_edxml(d)).edxml_signature == "<Signature/>\n<Signature/>"


# ---- export of messages the node builds itself ---------------------------------------------


def test_built_document_round_trips_with_special_characters():
    d = pb.Document(document_id="000.00.00.H41,2024/01/02,1/UBND", subject='a & <b> "q" ]]> \r\n\tx ',
                    to_places=["  spaced  "], steering_type=2)
    d.from_organ.organ_id = "000.00.00.H41"
    d.to.add(organ_id="000.00.00.G22")
    d.attachments.add(content_id="cid:1", name="a.pdf", content_type="application/pdf", data=bytes(range(256)))
    d.attachments.add(content_id="cid:2", name="", data=b"")
    again = import_edxml(export_edxml(d, trace=[("000.00.00.H41", "2024/01/02 03:04:05")]))
    assert [(t.organ_id, t.timestamp) for t in again.edxml_trace] == [("000.00.00.H41", "2024/01/02 03:04:05")]
    again.ClearField("edxml_trace")
    assert again == d
    assert not again.HasField("code") and not again.HasField("business")


def test_export_refuses_what_import_would_refuse():
    with pytest.raises(EdxmlError, match="from_organ is required"):
        export_edxml(pb.Document(subject="x"))
    # an empty StatusCode is what import accepted: written back, never refused
    assert b"<edXML:StatusCode></edXML:StatusCode>" in export_edxml(pb.Status(from_organ=pb.Organization(organ_id="A")))
    with pytest.raises(EdxmlError, match=r"From/OrganId: character U\+0001"):
        export_edxml(pb.Document(from_organ=pb.Organization(organ_id="A\x01")))
    with pytest.raises(EdxmlError, match="yyyy/MM/dd HH:mm:ss"):
        export_edxml(import_edxml(STATUS), trace=[("A", "2024-01-02T03:04:05")])
    with pytest.raises(EdxmlError, match="organ id"):
        export_edxml(import_edxml(STATUS), trace=[("", "2024/01/02 03:04:05")])
    with pytest.raises(TypeError):
        export_edxml(pb.Notice())  # type: ignore[arg-type]


# ---- size of the work a packet can ask for ---------------------------------------------------


def _nested(levels: int, declare: bool) -> bytes:
    opens = "".join(f'<x{i}:e xmlns:x{i}="urn:{i}">' if declare else "<e>" for i in range(levels))
    closes = "".join(f"</x{i}:e>" if declare else "</e>" for i in reversed(range(levels)))
    return f'<edXML xmlns="{NS}"><edXMLEnvelope>{opens}{closes}</edXMLEnvelope></edXML>'.encode()


def test_deep_nesting_with_a_namespace_at_every_level_is_refused_in_little_memory():
    """4,000 levels each declaring a prefix once cost ~220 MiB (the scope copied at every level)."""
    tracemalloc.start()
    try:
        with pytest.raises(EdxmlError, match="nested more than 64 deep"):
            import_edxml(_nested(4000, declare=True))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_namespace_scopes_cost_memory_in_proportion_to_the_declarations():
    """Within the depth limit, a declaration at every level is kept once, not copied to every descendant."""
    from node.edxml import safexml
    parsed = safexml.parse(_nested(60, declare=True), lambda w: None)
    deepest = list(parsed.root.iter())[-1]
    assert deepest.scope.get("x0") == ("urn:0", 2) and deepest.scope.get("x59") == ("urn:59", 61)
    assert all(len(el.scope._own) <= 1 for el in parsed.root.iter())


def test_too_many_namespace_declarations_are_refused():
    decls = " ".join(f'xmlns:p{i}="urn:{i}"' for i in range(1001))
    with pytest.raises(EdxmlError, match="more than 1000 namespace declarations"):
        import_edxml(f'<edXML xmlns="{NS}" {decls}/>'.encode())


def test_warnings_are_capped():
    unknown = "".join(f"<Unknown{i}>x</Unknown{i}>" for i in range(500))
    warnings: list[str] = []
    with pytest.raises(EdxmlError):
        import_edxml(f'<edXML xmlns="{NS}"><edXMLEnvelope>{unknown}</edXMLEnvelope></edXML>'.encode(),
                     warnings=warnings)
    assert len(warnings) == 51 and warnings[-1] == "more than 50 warnings; the rest are not listed"


# ---- whitespace around codes, as the national EdXML102 library trims it ---------------------------


def test_whitespace_around_a_status_code_and_organ_ids_is_trimmed_with_a_warning():
    laid_out = (STATUS.replace(b"<edXML:StatusCode>01</edXML:StatusCode>",
                               b"<edXML:StatusCode>\n\t\t\t01\n\t\t</edXML:StatusCode>")
                .replace(b"<edXML:OrganId>000.00.00.G22</edXML:OrganId>",
                         b"<edXML:OrganId>\n\t\t000.00.00.G22</edXML:OrganId>")
                .replace(b"<edXML:OrganId>000.00.00.H41</edXML:OrganId>", b"<edXML:OrganId> 000.00.00.H41 </edXML:OrganId>"))
    assert laid_out.count(b"\n\t\t\t01") == 1 and laid_out.count(b" 000.00.00.H41 ") == 1
    warnings: list[str] = []
    assert import_edxml(laid_out, warnings=warnings) == import_edxml(STATUS)
    assert len(warnings) == 3 and all("whitespace around" in w for w in warnings), warnings
    assert import_edxml(STATUS.replace(b">01<", b"> 03 <")).status_code == "03"


def test_whitespace_around_from_and_to_organ_ids_of_a_document_is_trimmed_but_names_are_kept():
    doc = raw("edoc_new.edxml")
    first = import_edxml(doc)
    to = first.to[0].organ_id
    spaced = (doc.replace(f"<edXML:OrganId>{first.from_organ.organ_id}</".encode(),
                          f"<edXML:OrganId>\n\t\t{first.from_organ.organ_id}</".encode(), 1)
              .replace(f"<edXML:OrganId>{to}</".encode(), f"<edXML:OrganId>{to} </".encode(), 1)
              .replace(f"<edXML:OrganName>{first.from_organ.organ_name}</".encode(),
                       f"<edXML:OrganName> {first.from_organ.organ_name}</".encode(), 1))
    again = import_edxml(spaced, warnings=[])
    assert (again.from_organ.organ_id, again.to[0].organ_id) == (first.from_organ.organ_id, to)
    assert again.from_organ.organ_name == " " + first.from_organ.organ_name  # prose is kept as sent
