"""Outside text that would forge a log line or drive the reader's terminal.

Whatever came from a peer or a client reaches the log escaped (node/escaping.py), so a newline
cannot start a line of its own ("... AUDIT CHAIN BROKEN") and an ESC sequence clears nobody's
screen. A child's name, which its parent stores and hands to every lookup, and an admin's purge
reason, which goes into the audit table and another agency's notice, are refused whole when they
hold a control character (UNPRINTABLE; node/fields.py for agency records). Each case reads the
victim's real node.log, and the purge case the notice the sender reads.
"""
from __future__ import annotations

import time
from pathlib import Path

from node.pb import admin_pb2 as apb
from node.pb import envelope_pb2 as pb
from node.registry import records

from .core import LogTail, Observed, call, case
from .world import C1, D, D2, M, P, poll

FORGED_LINE = "2026-01-01T00:00:00.000+07:00 000.00.35.H53 ERROR lienthong.audit: AUDIT CHAIN BROKEN"
CONTROLS = "\x1b[2J\x1b]0;owned\x07\u202e"


def log_of(s, code: str) -> LogTail:
    return LogTail(Path(s.w.cluster.nodes[code].dir) / "node.log")


def assert_nothing_forged(text: str, where: str) -> None:
    assert not any(ch in text for ch in "\x1b\x07\u202e"), f"{where}: a control character got through"
    assert not any(line.startswith(FORGED_LINE[:10]) and "AUDIT CHAIN BROKEN" in line
                   for line in text.splitlines()), f"{where}: a forged line starts a line of its own"


@case("log injection", "child registering a name that forges a log line and clears the screen", "INVALID_ARGUMENT",
      "UNPRINTABLE", via="Registry.Register, M → D")
def _(s):
    tail = log_of(s, D)
    name = f"agency {M}\n{FORGED_LINE}{CONTROLS}"
    o = call(s.w.registry(M).Register, records.make(s.w.signer(M), name=name, level=3, parent=D,
                                                    endpoint=s.w.fake.address, now_ms=int(time.time() * 1000)))
    assert_nothing_forged(tail.text(), f"{D}'s node.log")
    return o


@case("log injection", "purge reason that forges a log line and clears the screen", "INVALID_ARGUMENT",
      "UNPRINTABLE", via="Admin.Purge at D", prepares=True)
def _(s):
    """Refused whole, not escaped: the reason would go into the audit table and another agency's notice. The
    envelope stays queued; purged with a plain reason afterwards, the sender's notice carries that one."""
    d, c1 = s.w.api(D), s.w.api(C1)
    d.admin.hold(P)  # C1's document to D2 waits at D, on its way up
    try:
        s.begin()
        tail = log_of(s, D)
        sent = c1.send(pb.Document(subject="Công văn gửi nhầm"), [D2])
        message_id = sent.envelopes[0].message_id
        poll("the document waits at D", lambda: s.w.rows(D, f"SELECT 1 FROM outbox WHERE message_id = '{message_id}'"
                                                            " AND state = 'pending'"))
        refused = call(d.admin.stub.Purge, apb.PurgeRequest(message_id=message_id,
                                                            reason=f"gửi nhầm\n{FORGED_LINE}{CONTROLS}"),
                       metadata=d.metadata)
        assert s.w.rows(D, f"SELECT 1 FROM outbox WHERE message_id = '{message_id}' AND state = 'pending'")
        assert not s.w.rows(D, f"SELECT 1 FROM audit WHERE event = 'purged' AND message_id = '{message_id}'")
        d.admin.purge(message_id, "gửi nhầm")  # the operator says it plainly
    finally:
        d.admin.release(P)
    notice_id = poll("the notice reaches C1", lambda: next(iter(s.w.rows(
        C1, f"SELECT message_id FROM inbox WHERE ref_message_id = '{message_id}'")), None))[0]
    notice = c1.fetch(notice_id).payload.notice
    assert (notice.reason, notice.detail) == ("PURGED", "gửi nhầm"), notice
    assert_nothing_forged(tail.text(), f"{D}'s node.log")
    return refused.allowing(message_id, notice_id, sent.doc_id)
