"""Log lines: ISO 8601 time with its zone, as text or one JSON object a line (for log shippers)."""
from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

from node import logs


@pytest.fixture
def restore_root_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_node_level_logger_message_and_a_zoned_time(restore_root_logging, capsys):
    logs.configure("000.00.01.H53", "INFO", "json")
    logging.getLogger("lienthong").info("link to %s is back", "000.00.00.H53")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("lienthong.incident").exception("failed; correlation id %s", "abc")
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert (first["node"], first["level"], first["logger"], first["message"]) == (
        "000.00.01.H53", "INFO", "lienthong", "link to 000.00.00.H53 is back")
    assert dt.datetime.fromisoformat(first["time"]).utcoffset() is not None
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exception"]


def test_text_lines_start_with_a_zoned_iso_time(restore_root_logging, capsys):
    logs.configure("000.00.01.H53", "INFO", "text")
    logging.getLogger("lienthong").warning("hello")
    line = capsys.readouterr().err.strip()
    stamp, code, level, rest = line.split(" ", 3)
    assert dt.datetime.fromisoformat(stamp).utcoffset() is not None
    assert (code, level, rest) == ("000.00.01.H53", "WARNING", "lienthong: hello")


FORGED = "gửi nhầm\n2026-01-01T00:00:00.000+07:00 000.00.00.H53 ERROR lienthong: AUDIT CHAIN BROKEN\x1b[2J\u202e"


def test_outside_text_cannot_start_a_line_or_reach_a_terminal(restore_root_logging, capsys):
    """A peer's name, a client's field or an admin's reason with a newline forged a log line of its own."""
    for fmt in logs.FORMATS:
        logs.configure("000.00.01.H53", "INFO", fmt)
        logging.getLogger("lienthong").warning("operator: purged %s: %s", "m1", FORGED,
                                               extra=logs.fields(reason=FORGED, message_id="m1"))
        try:
            raise ValueError(FORGED)
        except ValueError:
            logging.getLogger("lienthong.incident").exception("failed")
        err = capsys.readouterr().err
        assert "\x1b" not in err and "\u202e" not in err, fmt
        lines = err.splitlines()
        assert lines[0].endswith("lienthong: operator: purged m1: gửi nhầm\\n2026-01-01T00:00:00.000+07:00 "
                                 "000.00.00.H53 ERROR lienthong: AUDIT CHAIN BROKEN\\x1b[2J\\u202e") or fmt == "json"
        if fmt == "text":  # the traceback is indented under its line: nothing in it starts a line
            assert len(lines) > 3 and all(line.startswith("    ") for line in lines[2:]), lines
            assert not any("AUDIT CHAIN BROKEN" in line and not line.startswith("    ") for line in lines[1:])
        else:
            first, second = (json.loads(line) for line in lines)
            assert first["message"].endswith("AUDIT CHAIN BROKEN\\x1b[2J\\u202e") and "\n" not in first["message"]
            assert first["message"].endswith(": " + first["reason"]) and first["message_id"] == "m1"
            assert "\n" not in second["exception"].split("Traceback")[-1].splitlines()[-1]


def test_json_lines_carry_what_the_line_is_about(restore_root_logging, capsys):
    from node.errors import Reason
    logs.configure("000.00.01.H53", "INFO", "json")
    logging.getLogger("lienthong").info("hop %s unavailable", "000.00.00.H53",
                                        extra=logs.fields(agency="000.00.02.H53", hop="000.00.00.H53",
                                                          message_id="abc", reason=Reason.UNREACHABLE, key=""))
    line = json.loads(capsys.readouterr().err)
    assert {k: line.get(k) for k in logs.FIELDS} == {"agency": "000.00.02.H53", "hop": "000.00.00.H53",
                                                      "message_id": "abc", "reason": "UNREACHABLE", "key": None}
    with pytest.raises(TypeError):
        logs.fields(peer="x")  # one vocabulary: a misspelt field is a bug, not a silent drop


def test_a_parent_outage_is_a_warning_once_per_change_of_error(tmp_path, pki, clock, caplog):
    from node.errors import Reason, Rejected
    from node.registry.directory import Directory
    from node.store.database import Database
    parent, code = "000.00.00.H53", "000.00.35.H53"
    db = Database(tmp_path / "d.sqlite3")
    try:
        d = Directory(db, pki.signer(code), pki.trust(clock), clock, name="huyện", configured_parents={},
                      parent=parent, parent_address="127.0.0.1:9", transport=None, heartbeat_s=10,
                      stale_after_s=30, cache_ttl_s=300)
        d.endpoint = "127.0.0.1:8"
        errors = iter([Rejected(Reason.UNREACHABLE, "UNAVAILABLE")] * 3 + [Rejected(Reason.UNTRUSTED_CERT, "x")])

        def failing(*_a, **_kw):
            raise next(errors)
        d._call = failing
        caplog.set_level(logging.DEBUG, logger="node.registry.directory")
        for _ in range(4):
            d.keepalive()
        said = [(r.levelno, r.getMessage()) for r in caplog.records if r.getMessage().startswith("registry:")]
        assert [level for level, _ in said] == [logging.WARNING, logging.DEBUG, logging.DEBUG, logging.WARNING], said
        assert caplog.records[0].agency == parent and caplog.records[0].reason == "UNREACHABLE"
    finally:
        db.close()


def test_listing_subjects_are_kept_as_sent_and_escaped_where_shown():
    """The listing hands the sender's subject over unchanged (escaping it there once made the CLI show
    it escaped twice); the log line and the terminal escape it (tests/test_cli_attachments_process.py)."""
    from node.escaping import escape
    from node.exchange.outgoing import subject_of
    from node.pb import envelope_pb2 as pb
    assert subject_of(pb.Payload(document=pb.Document(subject="Công văn\n\x1b[2J"))) == "Công văn\n\x1b[2J"
    assert escape(subject_of(pb.Payload(notice=pb.Notice(reason="PURGED\x1b]0;x\x07")))) == "not delivered: PURGED\\x1b]0;x\\x07"


def test_a_hosted_agencys_code_is_on_its_lines():
    """On a host, the agency whose call or job a thread runs is named on each line (text and JSON)."""
    import json as _json
    import logging as _logging

    from node.logs import formatter, serving_as
    record = _logging.LogRecord("lienthong", _logging.INFO, "", 0, "%s", ("delivered",), None)
    with serving_as("000.01.01.H53"):
        text, js = formatter("host", "text").format(record), formatter("host", "json").format(record)
    assert " 000.01.01.H53 INFO " in text and _json.loads(js)["node"] == "000.01.01.H53"
    assert " host INFO " in formatter("host", "text").format(record)  # outside any agency's work


class _Lines(logging.Handler):
    """Every line formatted as the host formats it (text, its own code "host" when no agency is named)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logs.formatter("host", "text"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def lines():
    handler = _Lines()
    root = logging.getLogger()
    root.addHandler(handler)
    before = root.level
    root.setLevel(logging.INFO)
    yield handler.lines
    root.removeHandler(handler)
    root.setLevel(before)


def test_the_send_pools_lines_name_the_agency_whose_hop_it_runs(lines):
    """A shared send pool runs every agency's hops: an attempt's own lines, and the pool's line for an attempt
    that failed unexpectedly, name the agency that owns the hop."""
    from node.exchange.send_pool import SendPool, Step
    pool = SendPool(2, window=1)
    owner = pool.owner("000.01.01.H53")

    def attempt() -> Step:
        logging.getLogger("lienthong.hop").warning("link to 000.00.01.H53 is down")
        return Step.DONE

    def broken() -> Step:
        raise RuntimeError("bug")
    owner.task("000.00.01.H53", attempt).wake()
    owner.task("000.09.01.H53", broken).wake()
    try:
        assert owner.settle(10)
    finally:
        pool.stop(timeout=5)
    mine = [line for line in lines if "link to" in line or "failed unexpectedly" in line]
    assert len(mine) == 2 and all(" 000.01.01.H53 " in line for line in mine), mine


def test_an_http_watch_streams_lines_name_the_agency(lines):
    """On a host's HTTP/JSON face a Watch stream runs in the face's workers, message by message: the servicer's
    lines and an incident's line name the agency whose stream it is, as a unary call's do."""
    import urllib.request

    from node.api.clients import SCOPES, Client
    from node.api.http_server import HttpFace
    from node.pb import mailbox_pb2 as mpb
    from node.pb import mailbox_pb2_grpc as mgrpc

    class Watching(mgrpc.MailboxServicer):
        def Watch(self, request, context):
            logging.getLogger("lienthong.api").warning("watch started")
            yield mpb.Event(type="watching")
            raise RuntimeError("bug in the stream")

    name = mpb.DESCRIPTOR.services_by_name["Mailbox"].full_name
    services = {name: Watching()}
    face = HttpFace("127.0.0.1:0", "-", {name: None}, max_message_bytes=1 << 20, health_problem=lambda: None,
                    openapi=dict, caller=lambda header, named: (Client("app", frozenset(SCOPES)), services,
                                                                "000.02.01.H53"))
    port = face.start()
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/mailbox/Watch", data=b'{"inbox": true}',
                                         headers={"Authorization": "Bearer x", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            body = resp.read().decode()
    finally:
        face.stop(1)
    assert "watching" in body and "event: error" in body
    mine = [line for line in lines if "watch started" in line or "correlation id" in line]
    assert len(mine) == 2 and all(" 000.02.01.H53 " in line for line in mine), mine
