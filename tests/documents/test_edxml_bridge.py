"""Every sample packet goes import → send → receive → export through real nodes with its fields intact.

The samples tell one story: 000.00.00.G22 sends document 7816/VPCP-TTĐT to 000.00.00.H41,
which reports its statuses; G22 revokes, updates and replaces it and asks to take it back
(13), which H41 answers with 15 and, on a second request, 16.
"""
from __future__ import annotations

import sys
from pathlib import Path

import grpc
import pytest

from node.edxml import import_edxml
from node.grpc_errors import reason_of
from node.harness.inproc import start_tree
from node.harness.waiting import EventWaiter, wait_for_statuses

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ is not a package (importlib mode)
from edxml_samples import DIR as SAMPLES  # noqa: E402
G22, H41 = "000.00.00.G22", "000.00.00.H41"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    t = start_tree(tmp_path_factory.mktemp("edxml"), {"VN": None, G22: "VN", H41: "VN"})
    yield t
    t.stop()


def sample(name: str) -> bytes:
    data = (SAMPLES / name).read_bytes()
    if name == "edoc_new.edxml":  # its From is 002.00.20.H13; in this story G22 sends it (a node signs only its From)
        data = data.replace(b"<edXML:OrganId>002.00.20.H13</edXML:OrganId>",
                            f"<edXML:OrganId>{G22}</edXML:OrganId>".encode(), 1)
    return data


def same_fields(original: bytes, exported: bytes) -> None:
    """Equal but for the TraceHeaderList, which the export extends with the node's own path."""
    a, b = import_edxml(original, warnings=[]), import_edxml(exported, warnings=[])
    a_trace = [(t.organ_id, t.timestamp) for t in a.edxml_trace]
    b_trace = [(t.organ_id, t.timestamp) for t in b.edxml_trace]
    assert b_trace[:len(a_trace)] == a_trace and len(b_trace) > len(a_trace)
    a.ClearField("edxml_trace")
    b.ClearField("edxml_trace")
    assert a == b


def deliver(tree, at: str, to: str, name: str, recipients=(), ref: str = "") -> str:
    """Import a packet at `at`; wait until it arrives at `to`; return its message id there."""
    with EventWaiter(tree.client(to), sent=False) as ev:
        resp = tree.client(at).import_edxml(sample(name), list(recipients), ref)
        mid = resp.status_message_id or resp.sent.envelopes[0].message_id
        ev.wait(lambda evs: mid in {e.message_id for e in evs}, timeout=30)
    return mid


def round_trip(tree, at: str, to: str, name: str, recipients=(), ref: str = "") -> str:
    mid = deliver(tree, at, to, name, recipients, ref)
    exported = tree.client(to).export_edxml(mid)
    same_fields(sample(name), exported.packet)
    return mid


def test_every_sample_survives_the_trip(tree):
    # the document (its To is an odd code: we address it to H41), then every status on it
    doc = round_trip(tree, G22, H41, "edoc_new.edxml", [H41])
    assert tree.client(H41).fetch(doc).payload.document.attachments[0].data  # byte-for-byte via equality above
    # the SDK's software sends 01 itself after the node's automatic one: its description, staff and time reach
    # the sender (once; a second import of it is not sent again)
    resp = tree.client(H41).import_edxml(sample("status_inbox_01.edxml"))
    assert not resp.sent.envelopes and resp.status_message_id
    automatic, agency = wait_for_statuses(tree.client(G22), doc, {H41: ["01", "01"]}).recipients[0].statuses
    packet = import_edxml(sample("status_inbox_01.edxml"), warnings=[])
    assert agency.message_id == resp.status_message_id != automatic.message_id
    assert (agency.description, agency.staff_info, agency.timestamp) == (
        packet.description, packet.staff_info, packet.timestamp) and packet.description.startswith("Văn thư")
    assert automatic.description == "" and automatic.timestamp
    again = tree.client(H41).import_edxml(sample("status_inbox_01.edxml"))
    assert "not sent again" in again.warnings[-1] and again.status_message_id == resp.status_message_id
    for name in ("status_acceptance_03.edxml", "status_assignment_04.edxml",
                 "status_processing_05.edxml", "status_finish_06.edxml"):
        round_trip(tree, H41, G22, name)
    # a second copy of the document (H41 now holds two with one DocumentId: a status must name which), returned (02),
    # then revoked, updated, replaced and asked back
    second = round_trip(tree, G22, H41, "edoc_new.edxml", [H41])
    with pytest.raises(grpc.RpcError) as e:
        tree.client(H41).import_edxml(sample("status_rejection_02.edxml"))
    assert reason_of(e.value) == "AMBIGUOUS_DOCUMENT" and second in e.value.details()
    round_trip(tree, H41, G22, "status_rejection_02.edxml", ref=second)
    for name in ("edoc_revocation.edxml", "edoc_update.edxml", "edoc_replacement.edxml", "status_cancellation_13.edxml"):
        round_trip(tree, G22, H41, name)
    round_trip(tree, H41, G22, "status_change-acceptance_15.edxml", ref=second)
    round_trip(tree, G22, H41, "status_cancellation_13.edxml")
    round_trip(tree, H41, G22, "status_change-rejection_16.edxml", ref=second)
    # the sender's Track shows the whole story in order
    track = tree.client(G22).track(tree.client(G22).sent_all()[0].message_id)
    assert [s.status_code for s in track.recipients[0].statuses] == ["01", "01", "03", "04", "05", "06"]  # node's, agency's


NARROW = "000.00.00.G22,2026/12/07,1/THU-HEP"


def test_a_status_whose_document_id_two_senders_used_is_narrowed_by_its_response_for_organ_id(tree):
    """H41 holds one document numbered NARROW from G22 and one from VN: the 02 that answers G22 (its
    ResponseFor/OrganId) goes to G22's, not AMBIGUOUS_DOCUMENT; one naming neither sender stays ambiguous."""
    def numbered(name: str) -> bytes:
        return sample(name).replace("000.00.00.G22,2015/09/30,7816/VPCP-TTĐT".encode(), NARROW.encode())
    mids = {}
    for sender, packet in ((G22, numbered("edoc_new.edxml")),
                           ("VN", numbered("edoc_new.edxml").replace(f">{G22}</edXML:OrganId>".encode(), b">VN</edXML:OrganId>", 1))):
        with EventWaiter(tree.client(H41), sent=False) as ev:
            mid = tree.client(sender).import_edxml(packet, [H41]).sent.envelopes[0].message_id
            ev.wait(lambda evs: mid in {e.message_id for e in evs}, timeout=30)
        mids[sender] = mid
    assert tree.client(H41).fetch(mids["VN"]).entry.sender == "VN"
    stranger = numbered("status_rejection_02.edxml").replace(f">{G22}</edXML:OrganId>".encode(),
                                                           b">000.00.00.H99</edXML:OrganId>")
    with pytest.raises(grpc.RpcError) as e:
        tree.client(H41).import_edxml(stranger)
    assert reason_of(e.value) == "AMBIGUOUS_DOCUMENT"
    resp = tree.client(H41).import_edxml(numbered("status_rejection_02.edxml"))
    [returned] = wait_for_statuses(tree.client(G22), mids[G22], {H41: ["01", "02"]}).recipients
    assert returned.statuses[-1].message_id == resp.status_message_id


def test_a_status_out_of_order_is_refused_on_import(tree):
    mid = deliver(tree, G22, H41, "edoc_new.edxml", [H41])
    with pytest.raises(grpc.RpcError) as e:
        tree.client(H41).import_edxml(sample("status_finish_06.edxml"), ref_message_id=mid)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "current status 01" in e.value.details()


def test_malformed_packet_names_the_line(tree):
    with pytest.raises(grpc.RpcError) as e:
        tree.client(G22).import_edxml(b"<?xml version='1.0'?>\n<edXML>\n<oops></edXML>")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and reason_of(e.value) == "MALFORMED"
    assert "line 3" in e.value.details()


def test_stray_bytes_are_reported_as_a_warning(tree):
    with EventWaiter(tree.client(H41), sent=False) as ev:
        resp = tree.client(G22).import_edxml(sample("edoc_new.edxml"), [H41])
        ev.wait(lambda evs: resp.sent.envelopes[0].message_id in {e.message_id for e in evs}, timeout=30)
    assert any("stray" in w for w in resp.warnings)
