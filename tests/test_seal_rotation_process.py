"""Rotating a node's seal key (docs/sealing.md, "Rotating the seal key"), on real processes A → B.

A sends B a document, sealed (its own sent copy wrapped for A's seal key). A's admin rotates the key:
the old file moved aside, a new one made at start. Without the old key in `sealing.previous_keys` A
cannot open its own sent copy, so a revoke (which copies the original) is refused with
NOT_SEALED_FOR_ME and nothing is sent; with it, the revoke goes and B takes it."""
from __future__ import annotations

import grpc
import pytest
import yaml

from node.grpc_errors import reason_of
from node.harness import nodes
from node.harness.nodes import NodeSpec
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb

A, B = "000.00.01.H53", "000.00.02.H53"
TIMEOUT = 30.0


def restart(handle, edit=None) -> None:
    assert nodes.terminate(handle) == 0
    if edit is not None:
        cfg = yaml.safe_load(handle.config.read_text())
        edit(cfg)
        handle.config.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False))
    nodes.start(handle)
    nodes.wait_healthy([handle], TIMEOUT)


def test_a_rotated_seal_key_kept_in_previous_keys_still_opens_what_was_sealed_to_it(tmp_path):
    ha, hb = nodes.pair(tmp_path, NodeSpec(A, "Sở A"), NodeSpec(B, "Sở B"))
    try:
        for h in (hb, ha):
            nodes.start(h)
        nodes.wait_healthy([ha, hb], TIMEOUT)
        with EventWaiter(ha.client(), inbox=False) as ev:
            sent = ha.client().send(pb.Document(subject="Quyết định sẽ thu hồi"), [B])
            ev.wait(lambda _: sent.envelopes[0].message_id in ev.ids("delivered"), TIMEOUT)
        keys = ha.dir / "keys"
        old_key = (keys / "seal.key").read_bytes()

        assert nodes.terminate(ha) == 0
        (keys / "seal.key").rename(keys / "seal-old.key")
        nodes.start(ha)
        nodes.wait_healthy([ha], TIMEOUT)
        assert (keys / "seal.key").read_bytes() != old_key  # a new key was made and published
        before = len(ha.client().sent_all())
        with pytest.raises(grpc.RpcError) as info:
            ha.client().change(sent.doc_id, 1, reason="thu hồi")
        assert reason_of(info.value) == "NOT_SEALED_FOR_ME"
        assert len(ha.client().sent_all()) == before  # nothing sent

        restart(ha, lambda cfg: cfg.setdefault("sealing", {}).update(previous_keys=["keys/seal-old.key"]))
        with EventWaiter(hb.client()) as arrived:
            revoke = ha.client().change(sent.doc_id, 1, reason="thu hồi")
            mid = revoke.envelopes[0].message_id
            arrived.wait(lambda _: mid in arrived.ids("arrived"), TIMEOUT)
        assert hb.client().fetch(mid).payload.document.business.business_doc_type == 1
    finally:
        for h in (ha, hb):
            nodes.terminate(h)
