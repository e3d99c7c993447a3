"""Who may do what on a host (docs/hosting.md): the host admin on any agency it names, an agency's admin
client on its own agency only, each agency signing with its own key only, and the host-wide CLI
(`doctor --all`, `backup --all`). A host object serving a province and two communes in this process."""
from __future__ import annotations

import secrets

import grpc
import pytest

from node import cli
from node.grpc_errors import reason_of
from node.harness import hosts, nodes
from node.harness.inproc import FAST_REGISTRY
from node.harness.nodes import NodeSpec
from node.harness.waiting import wait_for_statuses
from node.host.config import load_host
from node.host.dispatch import AGENCY
from node.host.host import Host
from node.host.shares import AgencyShares
from node.pb import admin_pb2 as apb
from node.pb import envelope_pb2 as pb
from node.pb import mailbox_pb2 as mpb

P, C1, C2 = "000.00.01.H53", "000.01.01.H53", "000.02.01.H53"
TIMEOUT = 30.0
OPS, READER = secrets.token_urlsafe(32), secrets.token_urlsafe(32)


@pytest.fixture()
def world(tmp_path):
    ca = nodes.make_ca(tmp_path)
    listen = f"127.0.0.1:{nodes.free_port()}"
    tokens = {"api": {"tokens": [{"name": "ops", "token": OPS, "scopes": ["admin"]},
                                 {"name": "reader", "token": READER, "scopes": ["read"]}]}}
    specs = [NodeSpec(P, "Tỉnh", extra={"node": {"root": True}}),
             NodeSpec(C1, "Xã 1", peers={P: P}, parent=P, extra=tokens), NodeSpec(C2, "Xã 2", peers={P: P}, parent=P)]
    h = hosts.prepare_host(tmp_path, ca, "host", specs, {c: listen for c in (P, C1, C2)}, listen=listen,
                           extra=FAST_REGISTRY)
    host = Host(load_host(h.config))
    host.start()
    try:
        nodes.wait_healthy([h.agencies[c] for c in (P, C1, C2)], timeout=TIMEOUT)
        sent = h.agencies[P].client(TIMEOUT).send(pb.Document(subject="Công văn cho xã 2"), [C2])
        wait_for_statuses(h.agencies[P].client(TIMEOUT), sent.doc_id, {C2: ["01"]}, timeout=TIMEOUT)
        yield host, h, sent
    finally:
        host.stop(grace=1)


def _as(h, token: str, agency: str | None = None):
    client = h.agencies[P].client(TIMEOUT)  # the host's one API port; the token says who calls
    metadata = (("authorization", f"Bearer {token}"),) + (((AGENCY, agency),) if agency else ())
    return client, metadata


def _refused(rpc, request, metadata) -> str:
    with pytest.raises(grpc.RpcError) as e:
        rpc(request, metadata=metadata, timeout=TIMEOUT)
    return reason_of(e.value)


def test_the_host_admin_acts_on_the_agency_it_names(world):
    host, h, sent = world
    c, admin = _as(h, h.admin_token, C2)
    assert c.stub.WhoAmI(mpb.WhoAmIRequest(), metadata=admin, timeout=TIMEOUT).code == C2
    assert [e.message_id for e in c.stub.ListInbox(mpb.ListInboxRequest(), metadata=admin, timeout=TIMEOUT).entries] \
        == [sent.envelopes[0].message_id]
    _, on_p = _as(h, h.admin_token, P)
    held = c.admin.stub.Hold(apb.HoldRequest(hop=C2), metadata=on_p, timeout=TIMEOUT)
    assert held.held and held.hop == C2
    assert [q.hop for q in c.admin.stub.Queues(apb.QueuesRequest(), metadata=on_p, timeout=TIMEOUT).hops if q.held] == [C2]
    c.admin.stub.Release(apb.HoldRequest(hop=C2), metadata=on_p, timeout=TIMEOUT)
    _, nobody = _as(h, h.admin_token)
    assert _refused(c.admin.stub.Queues, apb.QueuesRequest(), nobody) == "NOT_HOSTED"
    _, unhosted = _as(h, h.admin_token, "000.09.01.H53")
    assert _refused(c.admin.stub.Queues, apb.QueuesRequest(), unhosted) == "NOT_HOSTED"


def test_an_agency_admin_client_acts_on_its_own_agency_only(world):
    host, h, sent = world
    c, ops = _as(h, OPS)
    assert c.admin.stub.Queues(apb.QueuesRequest(), metadata=ops, timeout=TIMEOUT) is not None  # C1's own
    _, ops_on_p = _as(h, OPS, P)
    assert _refused(c.admin.stub.Hold, apb.HoldRequest(hop=C2), ops_on_p) == "OTHER_AGENCY"
    assert _refused(c.admin.stub.Purge, apb.PurgeRequest(message_id=sent.envelopes[0].message_id, reason="x"),
                    ops) == "NOT_FOUND"  # P's outbox is not C1's
    _, reader = _as(h, READER)
    assert _refused(c.admin.stub.Queues, apb.QueuesRequest(), reader) == "NOT_PERMITTED"
    held = [q.hop for q in h.agencies[P].client(TIMEOUT).admin.queues().hops if q.held]
    assert held == []  # nothing of P's was touched


def test_each_agency_signs_with_its_own_key_only(world):
    """Every part of a hosted agency that signs holds that agency's signer, and no two agencies share a key."""
    host, h, sent = world
    keys = set()
    for code, node in host.agencies.items():
        assert node.signer.code == code
        for part in (node.maker, node.lifecycle, node.intake, node.checkpointer, node.directory, node.health):
            assert part.signer is node.signer, f"{code}: {type(part).__name__} signs with another key"
        keys.add(node.signer.cert_der)
    assert len(keys) == len(host.agencies)
    got = h.agencies[C2].client(TIMEOUT).fetch(sent.envelopes[0].message_id)
    assert got.signature_verified and got.path[0].code == P


def test_doctor_backup_and_audit_verify_of_every_agency(world, tmp_path, capsys):
    host, h, sent = world
    code = cli.main(["doctor", "--config", str(h.config), "--all"])
    out = capsys.readouterr().out
    for c in (P, C1, C2):  # each agency's report, its running state read from its own runtime file
        assert f"== agency {c}" in out and f"{c}: ok" in out.split("== host")[1]
    assert out.count("health SERVING") == 3 and code == 0
    (h.dir / C1 / "keys" / "node.key").chmod(0o644)  # one agency's problem: named, and the exit says so
    assert cli.main(["doctor", "--config", str(h.config), "--all"]) == 1
    assert f"{C1}: 1 problem" in capsys.readouterr().out.split("== host")[1]
    (h.dir / C1 / "keys" / "node.key").chmod(0o600)
    (tmp_path / "bk").mkdir()
    assert cli.main(["backup", "--config", str(h.config), "--all", "--to", str(tmp_path / "bk")]) == 0
    made = sorted(p.name for p in (tmp_path / "bk").iterdir())
    assert [any(c in name for name in made) for c in (P, C1, C2)] == [True] * 3 and len(made) == 3
    assert cli.main(["backup", "--config", str(h.config), "--all", "--agency", C1, "--to", str(tmp_path)]) == 1
    capsys.readouterr()
    assert cli.main(["audit", "verify", "--config", str(h.config), "--all", "--offline"]) == 0
    summary = capsys.readouterr().out.split("== host")[1]
    assert all(f"{c}: intact" in summary for c in (P, C1, C2)), summary


def test_shares_only_on_a_host_of_several():
    shares = AgencyShares(16, "API workers")
    assert [shares.enter(C1, serving=1) for _ in range(16)] == [None] * 16  # alone: every worker
    assert shares.enter(C1, serving=1).reason.name == "AGENCY_BUSY"
    for _ in range(16):
        shares.leave(C1)
    assert [shares.enter(C1, serving=3) for _ in range(8)] == [None] * 8
    refused = shares.enter(C1, serving=3)
    assert refused.reason.name == "AGENCY_BUSY" and refused.metadata == {"limit": "8"}
    assert shares.enter(C2, serving=3) is None  # another agency keeps the other half
    shares.leave(C1)
    assert shares.enter(C1, serving=3) is None and shares.busy(C1) == 8


def test_each_command_per_agency_and_queues_for_the_host(world, tmp_path, capsys):
    """doctor, queues, backup, restore, audit verify and evidence with --agency act on that agency alone (its
    files, its token); `queues --all` shows every agency's, as the host admin."""
    import json
    host, h, sent = world
    cfg = str(h.config)
    message_id = sent.envelopes[0].message_id
    assert cli.main(["doctor", "--config", cfg, "--agency", C1]) == 0
    out = capsys.readouterr().out
    assert out.count("health SERVING") == 1 and C1 in out

    h.agencies[P].client(TIMEOUT).admin.hold(C2)  # P's own next hop, held: in P's queues only
    try:
        assert cli.main(["queues", "--config", cfg, "--agency", P, "--json"]) == 0
        assert [q["hop"] for q in json.loads(capsys.readouterr().out)["hops"] if q.get("held")] == [C2]
        assert cli.main(["queues", "--config", cfg, "--agency", C1, "--json"]) == 0
        assert not [q for q in json.loads(capsys.readouterr().out).get("hops", []) if q.get("held")]
        assert cli.main(["queues", "--config", cfg, "--all", "--json"]) == 0
        every = json.loads(capsys.readouterr().out)
        assert sorted(every) == sorted([P, C1, C2])
        assert {c: [q["hop"] for q in r.get("hops", []) if q.get("held")] for c, r in every.items()} == \
            {P: [C2], C1: [], C2: []}
        assert cli.main(["queues", "--config", cfg, "--all"]) == 0
        summary = capsys.readouterr().out.split("== host")[1]
        assert f"{P}: " in summary and "1 held" in summary and f"{C2}: " in summary
        assert cli.main(["queues", "--config", cfg, "--all", "--agency", P]) == 1
        capsys.readouterr()
        import yaml
        no_admin = tmp_path / "no-admin.yaml"  # a host without a host admin: each agency asked with its own token
        no_admin.write_text(yaml.safe_dump({k: v for k, v in yaml.safe_load(h.config.read_text()).items() if k != "host"}))
        (tmp_path / "agencies").symlink_to(h.dir / "agencies")
        assert cli.main(["queues", "--config", str(no_admin), "--all", "--json"]) == 0
        held = lambda answers: {c: [q["hop"] for q in r.get("hops", []) if q.get("held")]  # noqa: E731
                                for c, r in answers.items()}
        assert held(json.loads(capsys.readouterr().out)) == held(every)
    finally:
        h.agencies[P].client(TIMEOUT).admin.release(C2)

    assert cli.main(["audit", "verify", "--config", cfg, "--agency", C2, "--offline"]) == 0
    capsys.readouterr()
    bundle = tmp_path / "c2.evidence"
    assert cli.main(["evidence", message_id, "--config", cfg, "--agency", C2, "--out", str(bundle)]) == 0
    assert cli.main(["verify-evidence", str(bundle), "--ca", str(h.dir.parent / "ca" / "ca.pem")]) == 0
    assert cli.main(["evidence", message_id, "--config", cfg, "--agency", C1,
                     "--out", str(tmp_path / "c1.evidence")]) != 0  # not in C1's mailbox
    assert not (tmp_path / "c1.evidence").exists()

    (tmp_path / "bk").mkdir()
    assert cli.main(["backup", "--config", cfg, "--agency", C2, "--to", str(tmp_path / "bk")]) == 0
    [made] = list((tmp_path / "bk").iterdir())
    assert C2 in made.name
    # restore C2 alone: its file set aside and reloaded (the host stops serving it), its data directory moved
    aside = h.agency_file(C2).with_suffix(".yaml.off")
    h.agency_file(C2).rename(aside)
    assert host.reload() and C2 not in host.agencies
    (h.dir / C2 / "data").rename(h.dir / C2 / "data.before")
    capsys.readouterr()
    assert cli.main(["restore", "--config", cfg, "--agency-file", str(aside), "--from", str(made)]) == 0
    assert C2 in capsys.readouterr().out
    aside.rename(h.agency_file(C2))
    assert host.reload() and C2 in host.agencies
    nodes.wait_healthy([h.agencies[C2]], timeout=TIMEOUT)
    assert [e.message_id for e in h.agencies[C2].client(TIMEOUT).inbox_all()] == [message_id]
