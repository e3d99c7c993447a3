"""`lienthong doctor` on a healthy and on a broken node, and health that says why (real processes).

Province P; districts D and X under it. D's parent link counts as broken after 1 s of failures."""
from __future__ import annotations

import signal

import yaml
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from node.cli import main
from node.harness import nodes
from node.harness.inproc import FAST_REGISTRY
from node.harness.nodes import NodeSpec
from node.harness.waiting import EventWaiter
from node.identity import certs

P, D, X = "000.00.00.H53", "000.00.35.H53", "000.00.36.H53"
TIMEOUT = 30.0
SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("doctor")
    ca = nodes.make_ca(root)
    addresses = {code: f"127.0.0.1:{nodes.free_port()}" for code in (P, D, X)}
    fast = {"registry": {**FAST_REGISTRY["registry"], "unhealthy_after": "1s"}}
    handles = {
        P: nodes.prepare_node(root, ca, NodeSpec(P, "Tỉnh P", extra=FAST_REGISTRY), addresses),
        D: nodes.prepare_node(root, ca, NodeSpec(D, "Huyện D", peers={P: P}, parent=P, extra=fast), addresses),
        X: nodes.prepare_node(root, ca, NodeSpec(X, "Huyện X", peers={P: P}, parent=P, extra=FAST_REGISTRY), addresses),
    }
    for h in handles.values():
        h.config.chmod(0o600)  # it holds the API token
    try:
        for h in handles.values():
            nodes.start(h)
        nodes.wait_healthy(list(handles.values()), TIMEOUT)
        yield root, ca, handles
    finally:
        for h in handles.values():
            nodes.terminate(h)


def wait_health(handle, want: int, timeout: float = TIMEOUT) -> None:
    """Follow the node's grpc.health.v1 Watch stream until it reports `want`."""
    with grpc.insecure_channel(handle.api) as ch:
        stream = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        try:
            for resp in stream:
                if resp.status == want:
                    return
        finally:
            stream.cancel()


def variant(handle, name: str, edit) -> str:
    """A copy of the node's config beside it (its relative paths still hold), edited."""
    data = yaml.safe_load(handle.config.read_text())
    edit(data)
    path = handle.dir / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return str(path)


def test_doctor_on_a_healthy_node_says_so_and_exits_0(tree, capsys):
    _, _, h = tree
    assert main(["doctor", "--config", str(h[D].config)]) == 0
    out = capsys.readouterr().out
    assert "healthy: nothing to fix" in out
    assert f"peers[0] {P}: {h[P].listen} is {P}, reachable over mutual TLS, SERVING" in out
    assert "running (pid" in out and "days left" in out


def test_doctor_names_a_peer_that_answers_as_another_agency_and_what_else_to_fix(tree, capsys):
    root, ca, h = tree
    closed = f"127.0.0.1:{nodes.free_port()}"
    cfg = variant(h[D], "wrong-peers.yaml", lambda d: d.update(peers=[
        {"code": P, "address": h[X].listen},      # X's address under P's code
        {"code": "000.00.37.H53", "address": closed}]))
    key = h[D].dir / "keys" / "node.key"
    key.chmod(0o644)
    try:
        assert main(["doctor", "--config", cfg]) == 1
        out = capsys.readouterr().out
        assert f"answers with the certificate of another agency, {X} (Huyện X), not {P}" in out
        assert "fix peers[0].address" in out
        assert f"nothing answers at {closed}" in out
        assert "PROBLEM  tls.key:" in out and f"chmod 600 {key}" in out
        # the running node sees the same key problem: NOT_SERVING, and its log says why, once
        wait_health(h[D], NOT_SERVING)
    finally:
        key.chmod(0o600)
    wait_health(h[D], SERVING)
    log = h[D].log_path.read_text()
    assert log.count("health: NOT_SERVING: tls.key:") == 1 and f"chmod 600 {key}" in log
    assert "health: SERVING (was: tls.key:" in log


def test_a_parent_link_failing_too_long_makes_the_node_not_serving_saying_why(tree):
    _, _, h = tree
    assert nodes.terminate(h[P]) == 0
    try:
        wait_health(h[D], NOT_SERVING)
    finally:
        nodes.start(h[P])
    wait_health(h[D], SERVING)
    log = h[D].log_path.read_text()
    assert log.count("health: NOT_SERVING: parent link:") == 1
    assert "failing for more than 1s (registry.unhealthy_after)" in log


def test_doctor_warns_30_days_before_the_certificate_expires(tree, tmp_path, capsys):
    root, ca, h = tree
    soon = tmp_path / "soon"
    certs.init_node(soon, D, "Huyện D", ca, days=10)
    cfg = variant(h[D], "expiring.yaml", lambda d: d["tls"].update(key=str(soon / "node.key"),
                                                                     cert=str(soon / "node.pem")))
    main(["doctor", "--config", cfg])
    out = capsys.readouterr().out
    assert "warning  tls.cert:" in out and "renew it now" in out


# ---- what the running node holds (Admin.Running) ----------------------------------------------

def test_doctor_holds_the_config_on_disk_against_the_one_the_node_runs_on(tree, capsys):
    _, _, h = tree
    cfg = h[D].config
    assert main(["doctor", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert f"ok       node config: the node runs on {cfg} as it is on disk" in out
    assert "ok       node crl: none in use" in out and "ok       node certificate: in use: serial" in out

    original = cfg.read_text()
    data = yaml.safe_load(original)
    data["retry"] = {"first_delay": "2s"}
    data["listen"] = f"127.0.0.1:{nodes.free_port()}"
    cfg.write_text(yaml.safe_dump(data, allow_unicode=True))
    try:
        assert main(["doctor", "--config", str(cfg)]) == 0  # warnings, not problems: the node runs fine
        out = capsys.readouterr().out
    finally:
        cfg.write_text(original)
    assert f"warning  node config: {cfg} differs from what the node runs on in retry.first_delay: SIGHUP applies" in out
    assert f"warning  node config: {cfg} differs from what the node runs on in listen: only a restart applies" in out
    assert "as it is on disk" not in out


def test_doctor_names_a_revoked_certificate_in_use_and_a_peer_refusing_us_as_revoked(tree, capsys):
    """Last in this module: X's certificate is revoked for good."""
    _, ca, h = tree
    assert main(["ca", "revoke", str(h[X].dir / "keys" / "node.pem"), "--ca", str(ca), "--reason", "superseded"]) == 0
    assert main(["ca", "crl", "--ca", str(ca)]) == 0
    data = yaml.safe_load(h[P].config.read_text())
    data["tls"]["crl"] = str(ca / "ca.crl")
    h[P].config.write_text(yaml.safe_dump(data, allow_unicode=True))
    capsys.readouterr()
    main(["doctor", "--config", str(h[P].config)])  # tls.crl added, no SIGHUP yet: the node does not use it
    out = capsys.readouterr().out
    assert f"warning  node config: {h[P].config} differs from what the node runs on in tls.crl: SIGHUP applies" in out
    assert "ok       node crl: none in use" in out
    assert "warning  node crl: a newer CRL is on disk (number 1) than the node uses: SIGHUP" in out
    with EventWaiter(h[X].client(), inbox=False, sent=False, registry=True) as ev:
        h[P].process.send_signal(signal.SIGHUP)  # P takes tls.crl and passes it down to X
        ev.wait(lambda evs: any(e.type == "crl" and e.crl_number == 1 for e in evs), TIMEOUT)

    assert main(["doctor", "--config", str(h[X].config)]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM  node certificate: serial" in out and f"({X}) is REVOKED on the CRL the node holds" in out
    assert f"PROBLEM  tls.cert: {h[X].dir / 'keys' / 'node.pem'} (serial" in out  # from the CRL it kept on disk
    assert (f"PROBLEM  peers[0] {P}: {h[P].listen} is {P} and refuses us: our certificate "
            f"({h[X].dir / 'keys' / 'node.pem'}) is REVOKED") in out
    assert "does it trust our certificate" not in out
    assert f"ok       node crl: in use: CRL number 1 (1 revoked, from {P})" in out
    assert "ok       tls.crl: on disk: CRL number 1 (1 revoked, from " in out


def test_doctor_names_a_client_token_file_others_may_read(tree, capsys):
    import secrets
    root, ca, h = tree
    token = h[D].dir / "qlvb.token"
    token.write_text(secrets.token_urlsafe(32))
    token.chmod(0o644)
    cfg = variant(h[D], "client-token.yaml", lambda d: d["api"].update(tokens=[{"name": "qlvb",
                                                                               "token_file": str(token)}]))
    assert main(["doctor", "--config", cfg]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM  api.tokens[0].token_file:" in out and f"chmod 600 {token}" in out
