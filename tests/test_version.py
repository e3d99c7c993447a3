"""node.version(): the installed version, read from the package metadata once per process (each agency a
host starts, each metrics scrape and Running call asks for it)."""
from __future__ import annotations

import importlib.metadata

import node


def test_the_version_is_read_once_per_process(monkeypatch):
    reads = []

    def installed(name):
        reads.append(name)
        return "9.9.9"
    monkeypatch.setattr(importlib.metadata, "version", installed)
    node.version.cache_clear()
    try:
        assert [node.version() for _ in range(3)] == ["9.9.9"] * 3
        assert reads == ["lienthong"]
    finally:
        node.version.cache_clear()  # the real one again for the tests after this
