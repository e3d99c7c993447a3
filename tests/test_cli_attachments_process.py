"""`lienthong fetch --save-dir` as a recipient's clerk runs it, against real node processes:
every attachment reaches the disk (a Vietnamese name of 200 characters is ~500 bytes of UTF-8,
twice the file system's 255-byte limit), what was renamed is said, and names chosen by the
sender reach the terminal with their control characters escaped."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from node.events import DELIVERED
from node.harness import nodes
from node.harness.nodes import NodeSpec
from node.harness.waiting import EventWaiter
from node.pb import envelope_pb2 as pb
from node.terminal import shown, shown_json

A, B = "000.00.01.H53", "000.00.02.H53"
ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 30.0

LONG = ("Bổ sung dự toán ngân sách tỉnh Bình Phước; điều chỉnh nhiệm vụ chi đầu tư phát triển Đường tổ hợp Đồng "
        "Xoài – Chơn Thành, hướng dẫn thực hiện chế độ phụ cấp ưu đãi đối với người trực tiếp chăm sóc, điều trị bệnh nhân ở bệnh viện huyện Lộc Ninh")[:200] + ".pdf"
ESCAPES = "\x1b[2J\x1b]0;pwned\x07\rSIGNATURE OK\nbáo cáo\u202efdp.exe"
PLAIN = "phụ lục 2.xlsx"


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    ha, hb = nodes.pair(tmp_path_factory.mktemp("fetch"), NodeSpec(A, "Sở A"), NodeSpec(B, "Sở B"))
    try:
        nodes.start(ha)
        nodes.start(hb)
        nodes.wait_healthy([ha, hb], timeout=TIMEOUT)
        yield ha, hb
    finally:
        for h in (ha, hb):
            nodes.terminate(h)


def lienthong(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "node", *argv], capture_output=True, text=True, cwd=ROOT,
                          timeout=TIMEOUT)


def test_three_attachments_all_saved_names_cut_by_bytes_and_printed_safely(pair, tmp_path):
    ha, hb = pair
    assert len(LONG) == 204 and len(LONG.encode()) > 255
    data = {LONG: b"%PDF-1.4 long", ESCAPES: b"escapes", PLAIN: b"plain"}
    doc = pb.Document(subject="Văn bản\x1b[31m đỏ\r\nfrom      giả mạo", content="dòng 1\ndòng 2\x1b[0m",
                      attachments=[pb.Attachment(name=n, content_type="application/octet-stream", data=d)
                                   for n, d in data.items()])
    client = ha.client(TIMEOUT)
    try:
        with EventWaiter(client, inbox=False) as events:
            [sent] = client.send(doc, [B]).envelopes
            events.wait(lambda evs: any(e.type == DELIVERED and e.message_id == sent.message_id for e in evs),
                        TIMEOUT)
    finally:
        client.close()
    save = tmp_path / "save"

    proc = lienthong("fetch", "--config", str(hb.config), sent.message_id, "--save-dir", str(save))

    assert (proc.returncode, proc.stderr) == (0, "")
    out = proc.stdout
    assert not any(c in out for c in "\x1b\r\x07\u202e")  # nothing a terminal acts on
    lines = out.splitlines()
    assert not any(line.startswith(("SIGNATURE OK", "from      giả mạo")) for line in lines)  # no forged lines
    assert f"subject   {shown(doc.subject)}" in lines
    assert "content   dòng 1" in lines and "dòng 2\\x1b[0m" in lines  # content keeps its lines, not its escapes
    for name, blob in data.items():
        assert f"attached  {shown(name)} (application/octet-stream, {len(blob)} bytes)" in lines

    saved = {p.read_bytes(): p.name for p in save.iterdir()}
    assert sorted(saved) == sorted(data.values())  # all three, each once
    long_name = saved[data[LONG]]
    assert len(long_name.encode()) <= 255 and long_name.endswith(".pdf") and LONG.startswith(long_name[:-4])
    assert len(long_name.encode()) > 250  # cut on a character boundary close to the limit, not far below it
    assert saved[data[PLAIN]] == PLAIN
    assert saved[data[ESCAPES]] == "[2J]0;pwnedSIGNATURE OKbáo cáofdp.exe"
    # what was renamed is said, with the name as sent shown escaped
    assert f"saved     {save / long_name} (renamed from {shown(LONG)})" in lines
    assert f"saved     {save / saved[data[ESCAPES]]} (renamed from {shown(ESCAPES)})" in lines
    assert f"saved     {save / PLAIN}" in lines

    as_json = lienthong("fetch", "--config", str(hb.config), sent.message_id, "--json")
    assert as_json.returncode == 0 and "\u202e" not in as_json.stdout and "\\u202e" in as_json.stdout

    for argv, config in ((["inbox"], hb.config), (["track", sent.message_id], ha.config)):  # the subject elsewhere
        listed = lienthong(argv[0], "--config", str(config), *argv[1:])
        assert listed.returncode == 0, listed.stderr
        assert shown(doc.subject) in listed.stdout and not any(c in listed.stdout for c in "\x1b\r")


# ---- the pieces, without a node ---------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("Sở Nội vụ tỉnh Bình Phước", "Sở Nội vụ tỉnh Bình Phước"),
    ("a\x1b[31mb", "a\\x1b[31mb"),
    ("line\r\nforged", "line\\r\\nforged"),
    ("csi\x9b2J", "csi\\x9b2J"),                 # C1: a one-byte CSI
    ("abc\u202etxt.exe", "abc\\u202etxt.exe"),   # bidi override
    ("zero\u200bwidth", "zero\\u200bwidth"),
    ("back\\x1b", "back\\\\x1b"),                # a literal backslash cannot pass for an escape
])
def test_shown_escapes_what_a_terminal_acts_on(text, expected):
    assert shown(text) == expected


def test_shown_json_stays_json_and_escapes_what_json_dumps_leaves_raw():
    import json
    text = json.dumps({"name": "a\u202eb\x9bc\u2028d😀"}, ensure_ascii=False, indent=1)
    safe = shown_json(text)
    assert safe.isprintable() or set(c for c in safe if not c.isprintable()) == {"\n"}
    assert json.loads(safe) == json.loads(text)
