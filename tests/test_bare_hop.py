"""The bare hop scripts/bench measures against does the work it claims: every envelope verified and
stored at B (a separate process), every batch's receipt signed by B and verified at A."""
from __future__ import annotations

from node.harness import bare_hop
from node.store.bare_inbox import BareInbox


def test_bare_hop_stores_every_envelope_and_verifies_receipts(tmp_path):
    result = bare_hop.run(tmp_path, n=600, size=1000)  # raises if a receipt does not verify
    assert result["documents"] == 600 and result["batch"] == bare_hop.BATCH
    assert BareInbox(tmp_path / bare_hop.B / "bare.sqlite3").counts() == (600, 600, "wal")


def test_a_forged_envelope_is_refused(tmp_path):
    paths = bare_hop.identities(tmp_path)
    receiver = bare_hop.Receiver(paths[bare_hop.B])
    env = bare_hop.pb.Envelope.FromString(bare_hop.envelopes(paths[bare_hop.A], 1, 10)[0])
    env.signature = env.signature[:-2] + bytes([env.signature[-2] ^ 1, env.signature[-1]])

    class Aborted(Exception):
        pass

    class Context:
        def abort(self, code, text):
            raise Aborted(text)

    request = bare_hop.xpb.DeliverBatchRequest(envelopes=[env.SerializeToString()]).SerializeToString()
    try:
        receiver.deliver(request, Context())
    except Aborted as e:
        assert str(e) == "signature"
    else:
        raise AssertionError("a forged signature was stored")
