"""docs/api.md, the local API's contract, keeps up with the proto: every Mailbox, Admin and Stats RPC, every
field of every message in mailbox.proto, admin.proto and stats.proto (in that message's section), and every
reason is documented there."""
from __future__ import annotations

import re
from pathlib import Path

from node.errors import Reason
from node.pb import admin_pb2, stats_pb2
from node.pb import mailbox_pb2 as mpb

API_MD = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def sections(text: str) -> dict[str, str]:
    """`### Name` heading -> the text up to the next heading."""
    parts = re.split(r"^#{2,3} (.+)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_every_mailbox_rpc_is_documented():
    calls = sections(API_MD.read_text())["Calls"]
    service = mpb.DESCRIPTOR.services_by_name["Mailbox"]
    missing = [m.name for m in service.methods if f"| `{m.name}` |" not in calls]
    assert not missing, f"docs/api.md, Calls: no row for {missing}"


def test_every_admin_and_stats_rpc_is_documented():
    calls = sections(API_MD.read_text())["Admin and Stats"]
    missing = [f"{svc.name}.{m.name}" for module, svc_name in ((admin_pb2, "Admin"), (stats_pb2, "Stats"))
               for svc in [module.DESCRIPTOR.services_by_name[svc_name]] for m in svc.methods
               if f"| `{svc.name}.{m.name}` |" not in calls]
    assert not missing, f"docs/api.md, Admin and Stats: no row for {missing}"


def test_every_message_and_field_of_the_api_is_documented():
    docs = sections(API_MD.read_text())
    missing = []
    messages = {**mpb.DESCRIPTOR.message_types_by_name, **admin_pb2.DESCRIPTOR.message_types_by_name,
                **stats_pb2.DESCRIPTOR.message_types_by_name}
    for name, message in messages.items():
        if name not in docs:
            missing.append(name)
            continue
        missing += [f"{name}.{f.name}" for f in message.fields if f"`{f.name}`" not in docs[name]]
    assert not missing, f"docs/api.md does not document: {missing}"


def test_every_reason_is_in_the_api_contract():
    reasons = sections(API_MD.read_text())["Reasons"]
    missing = [r.wire for r in Reason if f"| `{r.wire}` |" not in reasons]
    assert not missing, f"docs/api.md, Reasons: no row for {missing}"
    assert "(reasons.md)" in reasons


def test_status_03_is_labelled_as_qcvn_102_has_it():
    """03 is "accepted and entered in the incoming register" (tiếp nhận), not assigned (04) nor processing."""
    text = API_MD.read_text()
    assert "`03` accepted and\n  entered in the incoming register" in text
    for example in re.findall(r'"statusCode": "03", "description": "([^"]*)"', text):
        assert "tiếp nhận" in example and "phân công" not in example, example


def test_the_walk_through_uses_codes_of_the_tree_it_tells_you_to_start():
    """`scripts/cluster up small --http`, then every code the steps name is a node of that tree."""
    from node.harness import topology
    text = API_MD.read_text()
    steps = text[text.index("### A vendor's integration, step by step"):text.index("`scripts/bench-api` times")]
    assert "scripts/cluster up small --http" in steps
    named = set(re.findall(r"\b\d{3}\.\d{2}\.\d{2}\.[A-K]\d{2}\b", steps))
    assert named and named <= {n.code for n in topology.load("small")}, named
