"""What a SIGHUP takes into a running node, part by part (two in-process nodes, A and B; their real
config files rewritten, then Node.reload as the signal calls it), and the key classification behind it."""
from __future__ import annotations

import logging
import threading
from concurrent import futures

import pytest
import yaml

from node import config_changes
from node.config import load_config
from node.events import ARRIVED
from node.harness.inproc import running_pair
from node.harness.nodes import NodeSpec
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb
from node.pb import registry_pb2 as rpb
from node.transport.interface import Peer, TransportError

A, B = "000.00.01.H53", "000.00.02.H53"
TIMEOUT = 20.0


def rewrite(handle, edit) -> None:
    data = yaml.safe_load(handle.config.read_text())
    edit(data)
    handle.config.write_text(yaml.safe_dump(data, allow_unicode=True))


def test_live_and_restart_keys():
    for key in ("tls.crl", "tls.cert", "peers", "limits.park_for", "retry.jitter", "log_level", "sealing.mode",
                "metrics.listen"):
        assert config_changes.is_live(key), key
    for key in ("listen", "api.listen", "api.token", "node.data_dir", "node.code", "messages.batch_size",
                "registry.heartbeat", "audit.checkpoint_every", "parents_of", "tls.insecure_plaintext"):
        assert not config_changes.is_live(key), key


def test_merged_takes_the_live_keys_and_keeps_the_fixed_ones(pki, tmp_path):
    from node.harness import nodes
    h = nodes.prepare_node(tmp_path, pki.ca, NodeSpec(A, "Sở A"), {A: "127.0.0.1:0"})
    running = load_config(h.config)
    rewrite(h, lambda d: d.update(listen="127.0.0.1:7999", retry={"first_delay": "3s"}, log_level="DEBUG",
                                  messages={"batch_size": 7}))
    new = load_config(h.config)
    keys = config_changes.changed(config_changes.flat(running), config_changes.flat(new))
    assert keys == ["listen", "log_level", "messages.batch_size", "retry.first_delay"]
    s = config_changes.merged(running, new)
    assert (s.listen, s.messages.batch_size) == (running.listen, running.messages.batch_size)
    assert (s.retry.first_delay, s.log_level) == (3.0, "DEBUG")
    assert s.source == running.source and s.api.token == running.api.token
    assert "sha256:" in config_changes.flat(s)["api.token"] and running.api.token not in str(config_changes.flat(s))


def test_merged_builds_new_settings_and_changes_none_after_it_is_made():
    """Settings are frozen and shared by every part of a running node: `merged` once wrote the running `api` into
    the object it had validated (object.__setattr__), outside validation. Now it builds a new one; the only
    writes past a frozen dataclass left are `source` on a fresh copy (config.located) and a validator's own
    object while it is made."""
    import ast
    from pathlib import Path
    allowed = {("config.py", "located"), ("config.py", "_resolve_token"), ("topology.py", "__post_init__"),
               ("topology.py", "load")}
    found = set()

    def visit(node, path: Path, where: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            where = node.name
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "object.__setattr__":
            found.add((path.name, where))
        for child in ast.iter_child_nodes(node):
            visit(child, path, where)

    for path in (Path(__file__).resolve().parents[1] / "node").rglob("*.py"):
        text = path.read_text()
        if "object.__setattr__" in text:
            visit(ast.parse(text), path, "")
    assert found <= allowed, sorted(found - allowed)


def test_reload_takes_retry_limits_and_a_new_seal_key_and_mail_still_opens(tmp_path, caplog):
    with running_pair(tmp_path, NodeSpec(A, "Sở A"), NodeSpec(B, "Sở B"), TIMEOUT) as (na, nb, ha, hb):
        hop = na.dispatcher.hop(B)  # a sender made before the reload follows the new policy too
        old_seal = na.maker.seal_key
        old_seal_path = na.settings.seal_key_path
        rewrite(ha, lambda d: d.update(
            retry={"first_delay": "3s", "max_delay": "30s"}, limits={"recipients_per_send": 3},
            sealing={"key": str(ha.dir / "keys" / "seal-2.key"), "previous_keys": [str(old_seal_path)]},
            messages={"batch_size": 9}))
        with caplog.at_level(logging.INFO, logger="lienthong"):
            assert na.reload()
        assert (na.dispatcher.policy.first_delay, hop.policy.max_delay) == (3.0, 30.0)
        assert na.maker.limits.recipients_per_send == 3 and na.intake.limits.recipients_per_send == 3
        assert na.maker.seal_key.public_der != old_seal.public_der
        assert na.directory.seal_key == na.maker.seal_key.public_der  # published with our record
        assert old_seal.public_der in [k.public_der for k in na.maker.opening_keys]
        assert (ha.dir / "keys" / "seal-2.key").exists()
        assert na.settings.messages.batch_size == 256  # fixed: the old value until a restart
        text = caplog.text
        assert f"reload (SIGHUP): messages.batch_size changed in {ha.config}: restart to apply" in text
        assert "reload (SIGHUP): retry.first_delay taken" in text and "reload (SIGHUP): sealing.key taken" in text

        client_a, client_b = ha.client(TIMEOUT), hb.client(TIMEOUT)
        try:
            with EventWaiter(client_a, sent=False) as ev:  # B may still seal to A's previous key: A opens it
                [env] = client_b.send(pb.Document(subject="sau khi đổi khoá niêm phong"), [A]).envelopes
                ev.wait(lambda evs: any(e.type == ARRIVED and e.message_id == env.message_id for e in evs), TIMEOUT)
            assert client_a.fetch(env.message_id).payload.document.subject == "sau khi đổi khoá niêm phong"
        finally:
            client_a.close()
            client_b.close()


def refusal(call) -> str | None:
    """The reason a peer call was refused with, or None if it was answered."""
    try:
        call()
    except TransportError as e:
        return e.refused.reason.name if e.refused is not None else e.what
    return None


def test_reload_holds_the_next_peer_call_to_the_new_registry_and_signature_limits(tmp_path):
    """limits.registry_calls_per_peer (the peer gate) and limits.signature_burst (the signature budget), lowered by
    a reload, refuse B's very next call to A; with the old ones, the same calls were answered."""
    with running_pair(tmp_path, NodeSpec(A, "Sở A"), NodeSpec(B, "Sở B"), TIMEOUT) as (na, nb, ha, _):
        at_a = Peer(A, ha.listen)
        entered, release = threading.Event(), threading.Event()
        lookup = na.directory.lookup

        def slow_first(code, *args, **kwargs):  # the first question waits, as one passed down to a slow child would
            if not entered.is_set():
                entered.set()
                release.wait(TIMEOUT)
            return lookup(code, *args, **kwargs)

        na.directory.lookup = slow_first
        ask = lambda: nb.transport.lookup(at_a, rpb.LookupRequest(code=A), TIMEOUT)  # noqa: E731
        junk = lambda: nb.transport.deliver(at_a, [b"", b"", b""])  # noqa: E731 - 3 signatures to charge
        with futures.ThreadPoolExecutor(1) as pool:
            held = pool.submit(refusal, ask)
            try:
                assert entered.wait(TIMEOUT)
                assert refusal(ask) != "PEER_BUSY"  # 1 of B's 2 places is taken: the second is answered
                assert refusal(junk) is None  # answered: each envelope refused on its own
                rewrite(ha, lambda d: d.update(limits={"registry_calls_per_peer": 1, "signature_burst": 2,
                                                       "signatures_per_second": 0.001, "park_for": "1h"}))
                assert na.reload()
                assert na.directory.park_for_s == 3600  # what mail parked from now on is told it may wait
                assert refusal(ask) == "PEER_BUSY"
                assert refusal(junk) == "SIGNATURE_BUDGET"
            finally:
                release.set()
            assert held.result(TIMEOUT) != "PEER_BUSY"


def test_a_bad_config_changes_nothing(tmp_path, caplog):
    with running_pair(tmp_path, NodeSpec(A, "Sở A"), NodeSpec(B, "Sở B"), TIMEOUT) as (na, _, ha, _):
        before = na.settings
        rewrite(ha, lambda d: d.update(limits={"recipients_per_send": 3}, sealing={"previous_keys": ["nowhere.key"]}))
        with caplog.at_level(logging.INFO, logger="lienthong"):
            assert not na.reload()
        assert na.settings is before and na.maker.limits.recipients_per_send == before.limits.recipients_per_send
        assert "reload refused, keeping the config, key, certificate and trust anchors in use: " \
               "sealing.previous_keys[0]: expected an existing file" in caplog.text
        assert na.last_reload.outcome.startswith("refused: sealing.previous_keys[0]")


def test_a_refusal_quoting_the_file_is_logged_on_one_printable_line(tmp_path, caplog):
    with running_pair(tmp_path, NodeSpec(A, "Sở A"), NodeSpec(B, "Sở B"), TIMEOUT) as (na, _, ha, _):
        rewrite(ha, lambda d: d.update({"retry": {"first\n\x1b[31mdelay": "1s"}}))
        with caplog.at_level(logging.INFO, logger="lienthong"):
            assert not na.reload()
        [line] = [r.getMessage() for r in caplog.records if "reload refused" in r.getMessage()]
        assert line.isprintable() and "\x1b" not in line and "retry.first?" in line
        assert na.last_reload.outcome.isprintable()


def test_client_tokens_are_compared_by_digest_and_never_shown(pki, tmp_path):
    """api.tokens (a client's token inline) is one key, its tokens as digests: Admin.Running and doctor show it."""
    import secrets

    from node.harness import nodes
    token = secrets.token_urlsafe(32)
    h = nodes.prepare_node(tmp_path, pki.ca, NodeSpec(A, "Sở A", extra={"api": {"tokens": [
        {"name": "qlvb", "token": token}]}}), {A: "127.0.0.1:0"})
    running = load_config(h.config)
    flat = config_changes.flat(running)
    assert token not in str(flat) and "sha256:" in flat["api.tokens"] and '"qlvb"' in flat["api.tokens"]
    rewrite(h, lambda d: d["api"]["tokens"][0].update(token=secrets.token_urlsafe(32)))
    assert config_changes.changed(flat, config_changes.flat(load_config(h.config))) == ["api.tokens"]
