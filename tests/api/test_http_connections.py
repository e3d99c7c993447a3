"""The HTTP/JSON face's connection cap (node/api/http_server.py), on a real server on port 0: a connection past
the cap is answered 503 TOO_MANY_CONNECTIONS, closed by the server at once, and counted."""
from __future__ import annotations

import json
import socket

import pytest

from node.api import http_server
from node.api.http_server import HttpFace

TIMEOUT = 20.0
CAP = 2


@pytest.fixture
def face():
    f = HttpFace("127.0.0.1:0", "t" * 32, {}, max_message_bytes=1 << 20, health_problem=lambda: None,
                 openapi=lambda: {}, max_connections=CAP)
    f.start()
    yield f
    f.stop(grace=1)


def health_on(sock: socket.socket) -> bytes:
    """GET /v1/health on a kept-alive connection: its answer, once the server has taken the connection."""
    sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    while b"SERVING" not in answer:
        chunk = sock.recv(65536)
        assert chunk, answer
        answer += chunk
    return answer


def until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (the client neither sends nor closes)."""
    sock.settimeout(TIMEOUT)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_connection_past_the_cap_is_answered_closed_by_the_server_and_counted(face, monkeypatch):
    """One past the cap used to stay open REFUSED_LINGER_S (2 s) for its client to read, held by no cap: a flood
    past the cap cost a descriptor each for that long. It is closed as soon as it is answered now, however long
    a linger was (set to an hour here: it must play no part)."""
    monkeypatch.setattr(http_server, "REFUSED_LINGER_S", 3600.0, raising=False)
    held = [socket.create_connection(("127.0.0.1", face.port), timeout=TIMEOUT) for _ in range(CAP)]
    try:
        for sock in held:
            assert health_on(sock).startswith(b"HTTP/1.1 200")
        for n in range(1, 6):
            with socket.create_connection(("127.0.0.1", face.port), timeout=TIMEOUT) as extra:
                answer = until_closed(extra)  # it sends nothing and does not close: the server does
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 503") and json.loads(body)["error"]["reason"] == "TOO_MANY_CONNECTIONS"
            assert face.refused_connections == n
        assert health_on(held[0]).startswith(b"HTTP/1.1 200")  # the connections within the cap are served still
    finally:
        for sock in held:
            sock.close()
