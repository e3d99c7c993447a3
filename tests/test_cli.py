"""`lienthong` on the command line: talks to a node's local API, and fails in one
readable line (never a traceback) when there is no node or the config is wrong."""
from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from node.cli import main
from node.events import DELIVERED
from node.harness import nodes
from node.harness.inproc import running_pair
from node.harness.nodes import NodeSpec
from node.harness.waiting import EventWaiter
from node.pb import admin_pb2 as apb
from node.pb import admin_pb2_grpc as agrpc
from node.pb import envelope_pb2 as pb

A, B = "000.00.01.H53", "000.00.02.H53"
ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 10.0


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lienthong: ")
    return lines[0]


# ---- no node, bad config ------------------------------------------------------------

@pytest.fixture
def idle_config(pki, tmp_path) -> nodes.NodeHandle:
    """A valid config whose node is not running (its API port is free)."""
    return nodes.prepare_node(tmp_path, pki.ca, NodeSpec(A, "Sở A"), {A: f"127.0.0.1:{nodes.free_port()}"})


def edited_config(handle: nodes.NodeHandle, edit) -> Path:
    data = yaml.safe_load(handle.config.read_text())
    edit(data)
    path = handle.dir / "edited.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


class StuckQueue(agrpc.AdminServicer):
    """A node whose ListQueue always says the next page starts after seq 7: a bug, or a hostile node."""

    def __init__(self) -> None:
        self.calls = 0

    def ListQueue(self, request, context):
        self.calls += 1
        return apb.ListQueueResponse(messages=[apb.QueuedMessage(message_id=f"m{self.calls}")], next_after_seq=7,
                                     now_ms=1)


def test_queue_list_stops_with_an_error_when_a_page_does_not_move_on(capsys, idle_config):
    """It once asked for the page after 7 for ever, gathering the same messages until memory ran out."""
    from concurrent import futures

    import grpc
    stuck = StuckQueue()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    agrpc.add_AdminServicer_to_server(stuck, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        config = edited_config(idle_config, lambda d: d["api"].update(listen="127.0.0.1:0"))
        from node.config import load_config
        data_dir = Path(load_config(config).node.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "runtime.json").write_text(json.dumps({"api": f"127.0.0.1:{port}"}))
        status, out, err = run(capsys, "queue", "list", "--config", str(config))
    finally:
        server.stop(None)
    assert status == 1 and not out
    assert "ListQueue" in one_line_error(err) and "does not move on" in err
    assert stuck.calls == 2  # the first page, and the second that named the same next page


@pytest.mark.parametrize("command", [["inbox"], ["sent"], ["fetch", "x"], ["ack", "x"],
                                     ["send", "--to", B, "--subject", "s"]])
def test_no_node_running_is_one_line_naming_the_address(capsys, idle_config, command):
    status, out, err = run(capsys, command[0], "--config", str(idle_config.config), *command[1:])

    assert status == 1
    line = one_line_error(err)
    assert idle_config.api in line and "UNAVAILABLE" in line
    assert out == ""


BAD_CONFIGS = {
    "unknown key": (lambda d: d.update(retry={"frist_delay": "1s"}), "retry.frist_delay"),
    "bad value": (lambda d: d.update(messages={"max_size": -5}), "messages.max_size"),
    "bad address": (lambda d: d["api"].update(listen="localhost"), "api.listen"),
    "missing key": (lambda d: d["node"].pop("code"), "node.code"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_exits_2_naming_the_key(capsys, idle_config, case):
    edit, key = BAD_CONFIGS[case]
    path = edited_config(idle_config, edit)

    status, out, err = run(capsys, "inbox", "--config", str(path))

    assert status == 2
    line = one_line_error(err)
    assert "config error" in line and key in line and str(path) in line
    assert out == ""


def test_missing_config_file_exits_2(capsys, tmp_path):
    status, _, err = run(capsys, "sent", "--config", str(tmp_path / "nowhere.yaml"))
    assert status == 2
    assert "config file not found" in one_line_error(err)


def test_subprocess_against_nothing_prints_no_traceback(idle_config):
    proc = subprocess.run([sys.executable, "-m", "node", "inbox", "--config", str(idle_config.config)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"lienthong: no node answers at {idle_config.api} (UNAVAILABLE)"]
    assert proc.stdout == ""


# ---- against running nodes -------------------------------------------------------------

@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """In-process nodes A and B that know each other; the CLI talks to their local APIs."""
    root = tmp_path_factory.mktemp("cli")
    with running_pair(root, NodeSpec(A, "Sở A"), NodeSpec(B, "Sở B"), TIMEOUT) as (_, _, ha, hb):
        yield ha, hb


def test_send_inbox_fetch_ack_sent(capsys, running, tmp_path):
    ha, hb = running
    attachment = tmp_path / "quyet-dinh.pdf"
    attachment.write_bytes(b"%PDF-1.4 " + bytes(range(256)) * 8)

    client = ha.client(TIMEOUT)
    try:
        with EventWaiter(client, inbox=False) as events:
            status, out, err = run(capsys, "send", "--config", str(ha.config), "--to", B, "--subject", "Quyết định số 5",
                                   "--content", "Nội dung", "--priority", "2", "--attach", str(attachment))
            assert (status, err) == (0, "")
            doc_line, line = out.splitlines()
            assert doc_line.startswith("document ")
            mid, arrow, to = line.split()
            assert (len(mid), arrow, to) == (32, "->", B)
            events.wait(lambda evs: any(e.type == DELIVERED and e.message_id == mid for e in evs), TIMEOUT)
    finally:
        client.close()

    status, out, _ = run(capsys, "sent", "--config", str(ha.config))
    assert status == 0
    [row] = [r for r in out.splitlines() if r.startswith(mid)]
    assert row.split()[1:3] == [B, "delivered"]

    status, out, _ = run(capsys, "sent", "--config", str(ha.config), "--state", "pending")
    assert status == 0 and mid not in out

    status, out, _ = run(capsys, "inbox", "--config", str(hb.config), "--new")
    assert status == 0
    header, *rows = out.splitlines()
    assert header.startswith("MESSAGE ID")
    [row] = [r for r in rows if r.startswith(mid)]
    assert "document" in row and A in row and "Quyết định số 5" in row and " no " in row

    status, out, _ = run(capsys, "inbox", "--config", str(hb.config), "--json")
    assert status == 0
    [entry] = [e for e in json.loads(out) if e["messageId"] == mid]
    assert (entry["sender"], entry["subject"], entry["priority"]) == (A, "Quyết định số 5", 2)

    save = tmp_path / "saved"
    status, out, _ = run(capsys, "fetch", "--config", str(hb.config), mid, "--save-dir", str(save))
    assert status == 0
    assert f"message   {mid} (document)" in out
    assert f"from      {A}  signature verified" in out
    assert f"path      {A}@" in out
    assert "subject   Quyết định số 5" in out and "content   Nội dung" in out
    assert f"attached  quyet-dinh.pdf (application/pdf, {attachment.stat().st_size} bytes)" in out
    assert (save / "quyet-dinh.pdf").read_bytes() == attachment.read_bytes()

    status, out, _ = run(capsys, "fetch", "--config", str(hb.config), mid, "--json")
    assert status == 0 and json.loads(out)["signatureVerified"] is True

    assert run(capsys, "ack", "--config", str(hb.config), mid)[:2] == (0, "acknowledged\n")
    assert run(capsys, "ack", "--config", str(hb.config), mid)[:2] == (0, "already acknowledged\n")
    status, out, _ = run(capsys, "inbox", "--config", str(hb.config), "--new")
    assert status == 0 and mid not in out


def test_fetch_unknown_id_is_one_line_not_found(capsys, running):
    _, hb = running
    status, out, err = run(capsys, "fetch", "--config", str(hb.config), "f" * 32)
    assert status == 1 and out == ""
    line = one_line_error(err)
    assert "NOT_FOUND" in line and "f" * 32 in line


def test_wrong_token_is_one_line_unauthenticated(capsys, running):
    ha, _ = running
    path = edited_config(ha, lambda d: d["api"].update(token=secrets.token_urlsafe(32)))
    status, _, err = run(capsys, "sent", "--config", str(path))
    assert status == 1
    assert "UNAUTHENTICATED" in one_line_error(err)


def test_send_to_malformed_code_is_refused(capsys, running):
    ha, _ = running
    status, out, err = run(capsys, "send", "--config", str(ha.config), "--to", "not-a-code", "--subject", "s")
    assert status == 1 and out == ""
    assert "INVALID_ARGUMENT" in one_line_error(err) and "not an agency code" in err


def test_send_with_require_registered_to_a_code_nobody_holds_is_refused_and_sends_nothing(capsys, running):
    ha, _ = running
    before = run(capsys, "sent", "--config", str(ha.config))[1]
    status, out, err = run(capsys, "send", "--config", str(ha.config), "--to", "000.00.09.H53", "--subject", "s",
                           "--require-registered")
    assert status == 1 and out == ""
    assert "NOT_FOUND" in one_line_error(err) and "require_registered" in err
    assert run(capsys, "sent", "--config", str(ha.config))[1] == before


def test_send_missing_attachment_exits_2(capsys, running, tmp_path):
    ha, _ = running
    status, out, err = run(capsys, "send", "--config", str(ha.config), "--to", B, "--subject", "s",
                           "--attach", str(tmp_path / "missing.pdf"))
    assert status == 2 and out == ""
    assert "missing.pdf" in one_line_error(err)


def test_a_send_repeated_with_its_client_key_is_done_once_and_answered_alike(capsys, running):
    """What an admin's script does after a failure it cannot read: run the same command again."""
    ha, _ = running
    cmd = ["send", "--config", str(ha.config), "--to", B, "--subject", "một lần", "--client-key", "cli-key-1"]
    first, second = run(capsys, *cmd), run(capsys, *cmd)
    assert first[0] == second[0] == 0 and first[1] == second[1] and first[1].startswith("document ")
    [mid] = [ln.split()[0] for ln in first[1].splitlines()[1:]]
    assert [e.message_id for e in ha.client().sent_all() if e.subject == "một lần"] == [mid]
    status, out, err = run(capsys, *cmd[:-3], "khác", "--client-key", "cli-key-1")  # same key, other request
    assert status == 1 and "KEY_REUSED" in one_line_error(err)


def test_status_01_is_not_offered_to_software(capsys, running):
    with pytest.raises(SystemExit) as info:
        main(["status", "--config", str(running[0].config), "some-message", "01"])
    assert info.value.code == 2 and "invalid choice: '01'" in capsys.readouterr().err


def test_priority_out_of_range_is_a_usage_error(capsys, running):
    ha, _ = running
    with pytest.raises(SystemExit) as info:
        main(["send", "--config", str(ha.config), "--to", B, "--subject", "s", "--priority", "7"])
    assert info.value.code == 2
    assert "--priority" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["..", ".", ""], ids=["dotdot", "dot", "empty"])
def test_fetch_save_dir_survives_hostile_attachment_names(capsys, running, tmp_path, name):
    ha, hb = running
    doc = pb.Document(subject="tên tệp lạ")
    doc.attachments.add(name=name, content_type="application/octet-stream", data=b"payload")
    client = ha.client(TIMEOUT)
    try:
        with EventWaiter(client, inbox=False) as events:
            [sent] = client.send(doc, [B]).envelopes
            events.wait(lambda evs: any(e.type == DELIVERED and e.message_id == sent.message_id for e in evs), TIMEOUT)
    finally:
        client.close()
    save = tmp_path / "outer" / "save"
    save.mkdir(parents=True)

    status, _, err = run(capsys, "fetch", "--config", str(hb.config), sent.message_id, "--save-dir", str(save))

    assert "Traceback" not in err
    assert status in (0, 1)
    assert [p.name for p in (tmp_path / "outer").iterdir()] == ["save"]  # nothing written outside --save-dir


# ---- file names a sender chooses ----------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\boot.ini", "boot.ini"),
    ("bad\x00name.pdf", "badname.pdf"),
    ("line\nbreak\x1b[31m.pdf", "linebreak[31m.pdf"),
    ("..", "attachment-1"),
    (".bashrc", "bashrc"),
    ("a" * 500 + ".pdf", "a" * 251 + ".pdf"),           # 255 bytes: the file system's limit
    ("ữ" * 200 + ".pdf", "ữ" * 83 + ".pdf"),             # 3 bytes a character: 253 bytes, cut between two
    ("u\u031b\u0303" * 100 + ".pdf", "ữ" * 83 + ".pdf"),  # decomposed (as macOS writes it): composed first
    ("bảng kê." + "x" * 20, "bảng kê." + "x" * 20),      # a long "extension" is part of the name
])
def test_attachment_names_are_made_safe(name, expected):
    from node.cli import safe_file_name
    assert safe_file_name(name, 0, set()) == expected


def test_a_second_file_of_the_same_name_does_not_overwrite_the_first(tmp_path):
    from node.cli import safe_file_name
    (tmp_path / "scan.pdf").write_bytes(b"already here")
    used: set[str] = set()
    first = safe_file_name("scan.pdf", 0, used, tmp_path)
    second = safe_file_name("scan.pdf", 1, used, tmp_path)
    assert len({first, second, "scan.pdf"}) == 3 and first.endswith(".pdf") and second.endswith(".pdf")


@pytest.mark.parametrize("bad", ["../x", "a/b", ".hidden", "", "x" * 129, "id\x00"])
def test_a_message_id_that_could_name_a_path_is_refused_in_an_envelope(bad, pki, clock):
    from node import envelope
    from node.errors import Reason, Rejected
    with pytest.raises(Rejected) as e:
        _, raw = envelope.seal(pki.signer("000.00.01.H53"), "000.00.02.H53", pb.Payload(document=pb.Document(subject="x")),
                               clock=clock, lifetime_s=60, message_id=bad or "-")
        envelope.verify(raw, pki.trust(clock), max_size=1 << 20, clock=clock)
    assert e.value.reason is Reason.MALFORMED and e.value.field == "header.message_id"


# ---- identities ------------------------------------------------------------------------------

def test_keys_are_never_overwritten_without_force(capsys, tmp_path):
    ca, keys = tmp_path / "ca", tmp_path / "keys"
    assert run(capsys, "ca", "init", "--dir", str(ca))[0] == 0
    ca_key = (ca / "ca.key").read_bytes()
    status, _, err = run(capsys, "ca", "init", "--dir", str(ca))
    assert status == 2 and "ca.key already exists" in one_line_error(err) and "--force" in err
    assert (ca / "ca.key").read_bytes() == ca_key

    assert run(capsys, "init", "--code", A, "--name", "Sở A", "--dir", str(keys))[0] == 0
    node_key = (keys / "node.key").read_bytes()
    status, _, err = run(capsys, "init", "--code", A, "--name", "Sở A", "--dir", str(keys), "--ca", str(ca))
    assert status == 2 and "node.key already exists" in one_line_error(err)
    assert (keys / "node.key").read_bytes() == node_key and not (keys / "node.pem").exists()

    status, out, _ = run(capsys, "ca", "sign", "--ca", str(ca), str(keys / "node.csr"))
    assert status == 0 and f"for {A}" in out
    status, _, err = run(capsys, "ca", "sign", "--ca", str(ca), str(keys / "node.csr"))
    assert status == 2 and "node.pem already exists" in one_line_error(err)

    assert run(capsys, "init", "--code", A, "--name", "Sở A", "--dir", str(keys), "--force")[0] == 0
    assert (keys / "node.key").read_bytes() != node_key
    assert run(capsys, "ca", "init", "--dir", str(ca), "--force")[0] == 0
    assert (ca / "ca.key").read_bytes() != ca_key


def test_ca_sign_refuses_what_is_not_a_request(capsys, tmp_path):
    ca = tmp_path / "ca"
    run(capsys, "ca", "init", "--dir", str(ca))
    (tmp_path / "x.csr").write_text("nonsense")
    status, _, err = run(capsys, "ca", "sign", "--ca", str(ca), str(tmp_path / "x.csr"))
    assert status == 2 and "not a PEM certificate request" in one_line_error(err)


def test_version_and_check_config(capsys, idle_config, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("lienthong ")

    status, out, _ = run(capsys, "check-config", "--config", str(idle_config.config))
    assert status == 0 and f"OK — node {A}" in out
    assert not (idle_config.dir / "data").exists()  # checks, creates nothing

    (idle_config.dir / "keys" / "node.key").chmod(0o644)
    status, _, err = run(capsys, "check-config", "--config", str(idle_config.config))
    assert status == 2 and "tls.key" in one_line_error(err) and "chmod 600" in err


def test_a_file_system_with_a_shorter_name_limit_still_gets_the_attachment(tmp_path, monkeypatch):
    """eCryptfs allows 143 bytes, not 255: ENAMETOOLONG there saves the attachment as attachment-N (extension
    kept) instead of stopping the fetch; any other failure is raised for this attachment alone."""
    import builtins
    import errno

    from node import cli
    real_open = builtins.open

    def short_names(path, *a, **kw):
        if len(Path(path).name.encode()) > 143:
            raise OSError(errno.ENAMETOOLONG, "File name too long", str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(cli, "open", short_names, raising=False)
    used: set[str] = set()
    out = cli.save_attachment(tmp_path, "ữ" * 80 + ".pdf", b"long", 2, used)
    assert out == tmp_path / "attachment-3.pdf" and out.read_bytes() == b"long"
    assert cli.save_attachment(tmp_path, "ngắn.pdf", b"short", 3, used).read_bytes() == b"short"
