"""Admin.HandOver runs one at a time: each makes a full backup and sends it from offset 0, so a second call
while the first runs would restart the first's transfer at the successor."""
from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from node.api.admin import AdminService
from node.clock import FakeClock
from node.errors import Reason, Rejected
from node.pb import admin_pb2 as apb
from node.pb import registry_pb2 as rpb


def test_a_second_hand_over_while_one_runs_is_refused_and_changes_nothing():
    inside, go_on, calls = threading.Event(), threading.Event(), []

    def hand_over():
        calls.append(1)
        inside.set()
        assert go_on.wait(10)
        return "000.00.33.H53", rpb.HandOverResponse(done=True, inbox=2)

    admin = AdminService(None, SimpleNamespace(router=SimpleNamespace(code="000.00.31.H53")), FakeClock(),
                         hand_over=hand_over)
    answers = []
    first = threading.Thread(target=lambda: answers.append(admin.HandOver(apb.HandOverRequest(), None)))
    first.start()
    assert inside.wait(10)
    with pytest.raises(Rejected) as e:
        admin.HandOver(apb.HandOverRequest(), None)
    assert e.value.reason is Reason.HAND_OVER_IN_PROGRESS and not e.value.reason.permanent
    assert calls == [1]  # the second did nothing
    go_on.set()
    first.join(10)
    assert answers[0].inbox == 2
    assert admin.HandOver(apb.HandOverRequest(), None).inbox == 2 and calls == [1, 1]  # once it ended: again
