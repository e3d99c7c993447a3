"""The reason catalogue is one list in three places: node/errors.py, the proto enum, docs/reasons.md."""
from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest

from node.documents import rules
from node.errors import Reason, Rejected, naming
from node.pb import errors_pb2

DOCS = Path(__file__).resolve().parents[1] / "docs" / "reasons.md"
ROW = re.compile(r"^\| `(?P<reason>[A-Z_]+)` \| `(?P<code>[A-Z_]+)` \| (?P<permanent>yes|no) \| (?P<means>[^|]+) \| (?P<todo>[^|]+) \|$")


def documented() -> dict[str, re.Match]:
    catalogue = DOCS.read_text().split("## The catalogue", 1)[1]
    rows = [ROW.match(line) for line in catalogue.splitlines() if line.startswith("| `")]
    assert all(rows), "a catalogue row in docs/reasons.md does not read `| `REASON` | `CODE` | yes/no | ... | ... |`"
    return {m["reason"]: m for m in rows}


def test_wire_strings_are_the_names_so_stored_rows_and_older_peers_still_match():
    assert [r.wire for r in Reason] == [r.name for r in Reason]
    assert all(Reason.from_wire(r.name) is r for r in Reason)
    assert (Reason.from_wire("NO_SUCH_REASON"), Reason.from_wire(""), Reason.from_wire(None)) == (None, None, None)


def test_every_reason_has_a_status_code_other_than_ok_and_a_message():
    for r in Reason:
        assert isinstance(r.grpc_code, grpc.StatusCode) and r.grpc_code is not grpc.StatusCode.OK, r
        assert isinstance(r.permanent, bool) and r.public_message, r


def test_the_proto_enum_holds_the_same_reasons():
    proto = {v.name for v in errors_pb2.Reason.DESCRIPTOR.values} - {"REASON_UNSPECIFIED"}
    assert errors_pb2.REASON_UNSPECIFIED == 0
    python = {r.wire for r in Reason}
    assert not python - proto, f"add to proto/node/pb/errors.proto (then scripts/gen-proto): {sorted(python - proto)}"
    assert not proto - python, f"in errors.proto but not in node/errors.py: {sorted(proto - python)}"


def test_every_reason_is_documented_with_its_code_and_permanence():
    rows = documented()
    missing = [r.wire for r in Reason if r.wire not in rows]
    assert not missing, f"docs/reasons.md does not document: {missing}"
    stale = sorted(set(rows) - {r.wire for r in Reason})
    assert not stale, f"docs/reasons.md documents reasons that do not exist: {stale}"
    for r in Reason:
        row = rows[r.wire]
        assert (row["code"], row["permanent"]) == (r.grpc_code.name, "yes" if r.permanent else "no"), r.wire
        assert row["means"].strip() and row["todo"].strip(), r.wire


def test_naming_puts_the_place_in_front_of_the_detail_and_the_field():
    with pytest.raises(Rejected) as plain:
        with naming("documents[3]"):
            raise Rejected(Reason.TOO_LARGE, "envelope is 99 bytes, limit 10")
    assert (plain.value.detail, plain.value.field) == ("documents[3]: envelope is 99 bytes, limit 10", "documents[3]")

    with pytest.raises(Rejected) as nested:
        with naming("documents[1]"):
            raise Rejected(Reason.INVALID_REQUEST, "a node does not send to itself", field="recipients[0]",
                           metadata={"k": "v"})
    assert (nested.value.field, nested.value.metadata) == ("documents[1].recipients[0]", {"k": "v"})


STEPS = {
    # current, pending request, state, code -> metadata
    "06 after 01": (rules.ARRIVED, None, "active", rules.DONE, {"current_status": "01", "allowed": "02,03"}),
    "after done": (rules.DONE, None, "active", rules.PROCESSING, {"current_status": "06", "allowed": ""}),
    "a pending request can be answered too": (rules.ACCEPTED, rules.TAKE_BACK, "active", rules.ACCEPTED,
                                              {"current_status": "03", "allowed": "02,04,05,06,15,16"}),
    "nothing to answer": (rules.ACCEPTED, None, "active", rules.AGREE, {"current_status": "03", "allowed": "02,04,05,06"}),
    "taken back": (rules.ACCEPTED, None, "taken_back", rules.PROCESSING,
                   {"current_status": "03", "allowed": "", "document_state": "taken_back"}),
}


@pytest.mark.parametrize("case", list(STEPS))
def test_a_bad_step_says_the_current_status_and_what_is_allowed(case):
    current, pending, state, code, metadata = STEPS[case]
    with pytest.raises(Rejected) as refused:
        rules.check_step(current, pending, state, code)
    assert (refused.value.reason, refused.value.metadata) == (Reason.BAD_STEP, metadata)
    assert f"current status {current}" in refused.value.detail


def test_01_is_never_accepted_from_software():
    """01 (arrived) is the node's own, sent once when the document is stored: SetStatus "01" is refused."""
    for current in ("", rules.ARRIVED, rules.ACCEPTED):
        with pytest.raises(Rejected) as e:
            rules.check_step(current, None, "active", rules.ARRIVED)
        assert (e.value.reason, e.value.field) == (Reason.INVALID_REQUEST, "status_code")
        assert "01" not in e.value.metadata["allowed"].split(",")
