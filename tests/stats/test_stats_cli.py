"""`lienthong stats` against the Stats service on a real local-API gRPC server (token
interceptor included), and its one-line errors."""
from __future__ import annotations

import argparse
import json
import secrets
from concurrent import futures

import grpc
import pytest

from node import cli, cli_stats, stats
from node.api.auth import api_interceptors
from node.clock import FakeClock
from node.harness import nodes
from node.harness.nodes import NodeSpec
from node.pb import stats_pb2 as spb
from node.store import stats as store
from node.store.database import Database

ME, ME_NAME = "000.00.35.H53", "UBND huyện Hòa Thành"
C1 = "000.23.35.H53"


@pytest.fixture
def lienthong(monkeypatch):
    """`lienthong` main, with the stats command registered (whether or not cli.py does it yet)."""
    build = cli.build_parser

    def build_with_stats() -> argparse.ArgumentParser:
        p = build()
        sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
        if "stats" not in sub.choices:
            cli_stats.add_parser(sub)
        return p

    monkeypatch.setattr(cli, "build_parser", build_with_stats)

    def run(capsys, *argv: str) -> tuple[int, str, str]:
        status = cli.main(list(argv))
        out, err = capsys.readouterr()
        return status, out, err
    return run


@pytest.fixture
def handle(pki, tmp_path) -> nodes.NodeHandle:
    return nodes.prepare_node(tmp_path, pki.ca, NodeSpec(ME, ME_NAME), {ME: f"127.0.0.1:{nodes.free_port()}"})


@pytest.fixture
def served(handle, tmp_path):
    """The Stats service on the config's API address, over a mailbox with a few rows."""
    db = Database(tmp_path / "mailbox.sqlite3")
    with db.transaction() as c:
        c.execute("INSERT INTO docs (doc_id, created_ms, kind) VALUES ('d1', 1, 1)")
        c.executemany("INSERT INTO inbox (message_id, sender, kind, priority, received_ms) VALUES (?, ?, 1, 0, 1)",
                      [("m1", C1), ("m2", C1)])
        c.executemany("INSERT INTO status_out (doc_message_id, status_code, status_message_id, issued_ms)"
                      " VALUES (?,?,?,1)", [("m1", code, f"s{code}") for code in ("01", "03", "04", "05", "06")])
    c1 = spb.AgencyStats(code=C1, name="UBND xã Trường Hòa", docs_received=4, docs_answered_3=1,
                         distinct_codes_returned=3, as_of_ms=5, children=["001.23.35.H53"])  # silent so far
    store.store_child_subtree(db, C1, [(c1, spb.SignedStats(stats=c1.SerializeToString()))], 5)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), interceptors=api_interceptors(handle.token))
    assert stats.add_to_server(server, db, ME, ME_NAME, FakeClock()) == "lienthong.v1.Stats"
    server.add_insecure_port(handle.api)
    server.start()
    yield handle
    server.stop(0).wait()
    db.close()


def one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lienthong: ")
    return lines[0]


def test_table_of_own_counters(lienthong, capsys, served):
    status, out, err = lienthong(capsys, "stats", "--config", str(served.config))
    assert (status, err) == (0, "")
    header, row, summary = out.splitlines()
    assert header.split()[:3] == ["CODE", "NAME", "SENT"] and "MEETS 3/5" in header
    assert row.startswith(ME) and ME_NAME in row
    #            sent recv statuses ≥3%  ≥5%  codes meets
    assert row.split()[-7:] == ["1", "2", "5", "50.0", "50.0", "5", "yes/yes"]
    assert summary.startswith("1 agency: 1/1 return ≥3 status codes, 1/1 return ≥5; 2 documents received, "
                              "50.0% answered with ≥3 statuses, 50.0% with ≥5")


def test_table_of_the_subtree(lienthong, capsys, served):
    status, out, _ = lienthong(capsys, "stats", "--config", str(served.config), "--subtree")
    assert status == 0
    _, mine, child, summary, silent = out.splitlines()
    assert mine.startswith(ME)
    assert child.startswith(C1) and "UBND xã Trường Hòa" in child
    assert child.split()[-7:] == ["0", "4", "0", "25.0", "0.0", "3", "yes/no"]
    assert summary.startswith("2 agencies: 2/2 return ≥3 status codes, 1/2 return ≥5; 6 documents received, "
                              "33.3% answered with ≥3 statuses, 16.7% with ≥5")
    assert silent == "not reported (1): 001.23.35.H53"


def test_json(lienthong, capsys, served):
    status, out, _ = lienthong(capsys, "stats", "--config", str(served.config), "--subtree", "--json")
    assert status == 0
    data = json.loads(out)
    assert [a["code"] for a in data["agencies"]] == [ME, C1]
    mine = data["agencies"][0]
    assert (mine["name"], mine["docsSent"], mine["docsReceived"], mine["statusesSent"], mine["docsAnswered5"],
            mine["statusesReceived"]) == (ME_NAME, 1, 2, 5, 1, 0)
    assert data["summary"]["agencies"] == 2 and data["summary"]["shareAnswered3"] == pytest.approx(2 / 6)
    assert data["notReported"] == ["001.23.35.H53"]


def test_wrong_token_is_one_line_unauthenticated(lienthong, capsys, served):
    served.config.write_text(served.config.read_text().replace(served.token, secrets.token_urlsafe(32)))
    status, out, err = lienthong(capsys, "stats", "--config", str(served.config))
    assert status == 1 and out == ""
    assert "UNAUTHENTICATED" in one_line_error(err)


def test_no_node_running_is_one_line_naming_the_address(lienthong, capsys, handle):
    status, out, err = lienthong(capsys, "stats", "--config", str(handle.config))
    assert (status, out) == (1, "")
    assert one_line_error(err) == f"lienthong: no node answers at {handle.api} (UNAVAILABLE)"
