"""Every field packet through real nodes: imported at the node of the agency its From names, sent
across a relay (the root VN) to 000.00.00.H41, fetched and exported there with every field and every
attachment byte as it came; the national library's zip wrapping handed to the agency unwrapped."""
from __future__ import annotations

import base64
import hashlib
import re
import sys
from pathlib import Path

import grpc
import pytest

from node.cli import main
from node.edxml import import_edxml
from node.grpc_errors import reason_of
from node.harness.inproc import start_tree
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ is not a package (importlib mode)
from edxml_field import MALFORMED, READABLE, WRAPPED, from_code, raw  # noqa: E402
from edxml_samples import DIR as SAMPLES  # noqa: E402

ROOT, R, G22 = "VN", "000.00.00.H41", "000.00.00.G22"
SENDERS = sorted({from_code(n) for n in READABLE})  # 020100107370, vxp.saas.03 and four QCVN codes
CONTACT = {"address": "Số 1 Hoàng Hoa Thám, Ba Đình, Hà Nội", "email": "vpcp@chinhphu.vn", "phone": "080 43100"}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    # every sender directly under the root, whatever its code says: VN relays each packet to R
    odd = {c: ROOT for c in SENDERS}
    t = start_tree(tmp_path_factory.mktemp("field"), {ROOT: None, **{c: ROOT for c in SENDERS}, R: ROOT},
                   per_node={ROOT: {"parents_of": odd}, **{c: {"parents_of": {c: ROOT}} for c in SENDERS},
                             G22: {"parents_of": {G22: ROOT}, "node": CONTACT}})
    yield t
    t.stop()


def deliver(tree, at: str, packet: bytes) -> tuple[str, list[str]]:
    with EventWaiter(tree.client(R), sent=False) as ev:
        resp = tree.client(at).import_edxml(packet, [R])
        [env] = resp.sent.envelopes
        ev.wait(lambda evs: env.message_id in {e.message_id for e in evs}, timeout=30)
    return env.message_id, list(resp.warnings)


def b64_blocks(packet: bytes) -> list[bytes]:
    return [b"".join(m.split()) for m in
            re.findall(rb"<(?:edXML:)?(?:ContentTransferEncoded|AttachmentData)[^>]*>([^<]*)<", packet)]


@pytest.mark.parametrize("name", READABLE)
def test_every_field_packet_goes_in_travels_and_comes_out(tree, name):
    sender = from_code(name)
    mid, warnings = deliver(tree, sender, raw(name))
    original = import_edxml(raw(name), warnings=(expected_warnings := []))
    assert warnings == expected_warnings  # every warning reaches the caller of ImportEdxml

    fetched = tree.client(R).fetch(mid, keep_wrapped=True)
    assert [h.code for h in fetched.path] == [sender, ROOT, R]  # across the relay
    assert fetched.payload.document == original  # every field, every attachment byte, as it travelled

    out = tree.client(R).export_edxml(mid)
    assert out.warnings == []
    again = import_edxml(out.packet, warnings=[])
    trace = [t.organ_id for t in again.edxml_trace[len(original.edxml_trace):]]
    assert trace == [sender, ROOT, R]  # the path the recipient verified, after the packet's own trace
    del again.edxml_trace[len(original.edxml_trace):]
    assert again == original
    blocks = b64_blocks(raw(name))
    assert [a.data for a in again.attachments] == [
        base64.b64decode(b) if not a.encoded_text else b"" for a, b in zip(again.attachments, blocks, strict=True)]


@pytest.mark.parametrize("name", sorted(WRAPPED))
def test_zip_wrapped_files_reach_the_agency_unwrapped_and_the_wrapper_goes_back_out_unchanged(tree, name):
    mid, _ = deliver(tree, from_code(name), raw(name))
    got = tree.client(R).fetch(mid).payload.document
    for i, inner_name, inner_type, sha in WRAPPED[name]:
        a = got.attachments[i]
        assert (a.name, a.content_type, hashlib.sha256(a.data).hexdigest()) == (inner_name, inner_type, sha)
        assert re.fullmatch(r"[0-9a-f-]{36}\.\w+", a.unwrapped_from.entry_name) and a.unwrapped_from.size > 0
    # re-exported for a QCVN consumer: the very base64 that arrived
    original = b64_blocks(raw(name))
    assert b64_blocks(tree.client(R).export_edxml(mid).packet) == original
    # for a consumer that asked for unwrapped files: the inner file
    flat = import_edxml(tree.client(R).export_edxml(mid, unwrap_attachments=True).packet, warnings=[])
    for i, inner_name, inner_type, sha in WRAPPED[name]:
        a = flat.attachments[i]
        assert (a.name, a.content_type, hashlib.sha256(a.data).hexdigest()) == (inner_name, inner_type, sha)


def test_fetch_save_dir_writes_the_inner_file(tree, tmp_path, capsys):
    mid, _ = deliver(tree, G22, raw("library_zip_wrapped.edxml"))
    status = main(["fetch", "--config", str(tree[R][1].config), mid, "--save-dir", str(tmp_path)])
    assert status == 0 and "1896_QD-TTg_m_294779.doc (application/msword, 38 bytes)" in capsys.readouterr().out
    assert (tmp_path / "1896_QD-TTg_m_294779.doc").read_bytes() == "Hello QCVN 102 attachment - Xin chào\n".encode()


def test_a_document_sent_with_only_a_subject_exports(tree):
    with EventWaiter(tree.client(R), sent=False) as ev:
        [env] = tree.client(G22).send(pb.Document(subject="Chỉ có trích yếu"), [R]).envelopes
        ev.wait(lambda evs: env.message_id in {e.message_id for e in evs}, timeout=30)
    out = tree.client(R).export_edxml(env.message_id)
    d = import_edxml(out.packet, warnings=[])
    assert d.from_organ == pb.Organization(organ_id=G22, organ_name=f"agency {G22}", organ_add=CONTACT["address"],
                                           email=CONTACT["email"], telephone=CONTACT["phone"])
    assert re.fullmatch(rf"{re.escape(G22)},\d{{4}}/\d\d/\d\d,[0-9a-f-]{{36}}", d.document_id)
    assert d.subject == "Chỉ có trích yếu" and out.warnings == []
    # given a code and a promulgation date, the DocumentId is the QCVN 102 one
    doc = pb.Document(subject="Có số", code=pb.DocCode(code_number="12", code_notation="VPCP-TH"),
                      promulgation_info=pb.PromulgationInfo(promulgation_date="2025/11/03"))
    with EventWaiter(tree.client(R), sent=False) as ev:
        [env] = tree.client(G22).send(doc, [R]).envelopes
        ev.wait(lambda evs: env.message_id in {e.message_id for e in evs}, timeout=30)
    assert tree.client(R).fetch(env.message_id).payload.document.document_id == f"{G22},2025/11/03,12/VPCP-TH"


def test_a_from_naming_another_agency_is_refused_and_nothing_is_queued(tree):
    sent_before = len(tree.client(G22).sent_all())
    packet = raw("axis_2025_knobstick.edxml")  # From 020100107370
    with pytest.raises(grpc.RpcError) as e:
        tree.client(G22).import_edxml(packet, [R])
    assert reason_of(e.value) == "FROM_NOT_ALLOWED" and e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "'020100107370'" in e.value.details() and G22 in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        tree.client(G22).send(pb.Document(subject="giả danh", from_organ=pb.Organization(organ_id=R)), [R])
    assert reason_of(e.value) == "FROM_NOT_ALLOWED"
    status = (SAMPLES / "status_processing_05.edxml").read_bytes()  # a status's From (H41) is bound the same way
    with pytest.raises(grpc.RpcError) as e:
        tree.client(G22).import_edxml(status)
    assert reason_of(e.value) == "FROM_NOT_ALLOWED"
    assert len(tree.client(G22).sent_all()) == sent_before


def test_the_broken_template_is_refused_with_its_line(tree):
    with pytest.raises(grpc.RpcError) as e:
        tree.client(G22).import_edxml(raw(MALFORMED), [R])
    assert reason_of(e.value) == "MALFORMED" and "line 74, column 9: mismatched tag" in e.value.details()


def test_export_shows_the_verified_sender(tree):
    """A node that does not check (an older one) could send a From naming another agency: the recipient's
    export writes the signer instead, and says so."""
    node = tree.node(G22)
    doc = pb.Document(subject="giả danh", from_organ=pb.Organization(organ_id="000.00.00.G12", organ_name="Bộ Tài chính"))
    with EventWaiter(tree.client(R), sent=False) as ev:
        [(_, mid)] = node.outgoing.post(pb.Payload(document=doc), [R]).envelopes  # below the checks of Send
        ev.wait(lambda evs: mid in {e.message_id for e in evs}, timeout=30)
    out = tree.client(R).export_edxml(mid)
    assert import_edxml(out.packet, warnings=[]).from_organ == pb.Organization(organ_id=G22)
    assert out.warnings and "'000.00.00.G12'" in out.warnings[0] and G22 in out.warnings[0]
