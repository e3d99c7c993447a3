"""systemd readiness (Type=notify) on a real process, with a fake $NOTIFY_SOCKET: a unix datagram socket."""
from __future__ import annotations

import socket
import tempfile
from pathlib import Path

from node.client import probe_health
from node.harness import nodes
from node.harness.nodes import NodeSpec

A = "000.00.01.H53"


def test_ready_once_healthy_and_stopping_on_sigterm(pki, tmp_path, monkeypatch):
    sock_dir = Path(tempfile.mkdtemp(prefix="ltn-"))  # short: a unix socket path is at most 107 bytes
    path = sock_dir / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sd:
        sd.bind(str(path))
        sd.settimeout(30)  # a bound on the wait for the node's datagrams, not a sleep
        h = nodes.prepare_node(tmp_path, pki.ca, NodeSpec(A, "Sở A"), {A: "127.0.0.1:0"})
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        nodes.start(h)
        try:
            ready = sd.recv(4096).decode().splitlines()
            assert ready == ["READY=1", "STATUS=serving"]
            ch = h.client().channel
            assert probe_health(ch)  # READY=1 came when it was true
        finally:
            status = nodes.terminate(h)
        assert status == 0
        assert sd.recv(4096).decode().splitlines() == ["STOPPING=1", "STATUS=stopping"]
    path.unlink()
    sock_dir.rmdir()
