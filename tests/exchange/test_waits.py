"""Where a send to a code not registered yet waits, read from the lookup answer of the node that would park it
(node/exchange/outgoing.py, Outgoing._waits): that answer comes from a peer, so its words are checked."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from node.errors import Reason, Rejected
from node.exchange.outgoing import Outgoing
from node.store import outbox

NOW = 1_800_000_000_000
OURS_S = 3 * 86400


def waits(metadata: dict[str, str], sealing: bool = False) -> outbox.Waits:
    fake = SimpleNamespace(maker=SimpleNamespace(clock=SimpleNamespace(now_ms=lambda: NOW), sealing=sealing,
                                                 code="000.23.38.H53", limits=SimpleNamespace(park_for=float(OURS_S))))
    return Outgoing._waits(fake, Rejected(Reason.NOT_REGISTERED_YET, "not yet", metadata=metadata))


def test_the_relay_says_where_and_for_how_long():
    assert waits({"waits_at": "000.00.35.H53", "park_for_s": "3600"}) == outbox.Waits("000.00.35.H53", NOW + 3_600_000)


@pytest.mark.parametrize("metadata, at", [
    ({}, ""),                                                       # an older relay: ours, nowhere named
    ({"waits_at": "000.00.35.H53\n\x1b[31mFAKE", "park_for_s": "x"}, ""),  # not a code: not shown
    ({"waits_at": "x" * 10_000, "park_for_s": "9" * 400}, ""),         # over any lifetime: ours
    ({"waits_at": "000.00.35.H53", "park_for_s": "-5"}, "000.00.35.H53"),
    ({"waits_at": "000.00.35.H53", "park_for_s": "0"}, "000.00.35.H53"),
])
def test_words_a_peer_may_not_say_are_replaced_by_ours(metadata, at):
    assert waits(metadata) == outbox.Waits(at, NOW + OURS_S * 1000)


def test_sealing_keeps_it_home_whatever_the_relay_says():
    """Sealing on, the mail cannot leave before the recipient's seal key can be had: it waits at the sender,
    for the sender's own park_for, whatever a relay's answer names (issue 18 item 9 meets issue 17 vendor 1)."""
    said = {"waits_at": "000.00.35.H53", "park_for_s": "3600"}
    assert waits(said, sealing=True) == outbox.Waits("000.23.38.H53", NOW + OURS_S * 1000)
