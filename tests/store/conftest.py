"""A fresh mailbox database per test."""
from __future__ import annotations

import pytest

from node.store.database import Database


@pytest.fixture
def db(tmp_path):
    d = Database(tmp_path / "m.sqlite3")
    yield d
    d.close()
