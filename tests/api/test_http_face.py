"""The HTTP/JSON face between two real node processes, with a plain HTTP client (stdlib http.client):
send with two attachments, list and fetch on the recipient, ack, statuses 03–06 and track on the
sender, Watch as server-sent events, client keys, the same answers as gRPC, and the open routes."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from google.protobuf import json_format

from node.events import ARRIVED, DELIVERED
from node.harness import nodes
from node.harness.http_api import HttpApi, SseWatch, is_a
from node.harness.nodes import NodeSpec
from node.pb import mailbox_pb2 as mpb

A, B = "000.00.01.H53", "000.00.02.H53"
TIMEOUT = 20.0
MAX_SIZE = 64 * 1024
ROOT = Path(__file__).resolve().parents[2]
PDF = bytes(range(256)) * 20 + "giấy mời".encode()
XLSX = "bảng kê kinh phí".encode() * 100


class Pair:
    ha: nodes.NodeHandle
    hb: nodes.NodeHandle
    a: HttpApi
    b: HttpApi


def http_spec(code: str, name: str) -> NodeSpec:
    return NodeSpec(code, name, extra={"messages": {"max_size": MAX_SIZE},
                                       "api": {"http_listen": f"127.0.0.1:{nodes.free_port()}"}})


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    ha, hb = nodes.pair(tmp_path_factory.mktemp("http"), http_spec(A, "Sở A"), http_spec(B, "Sở B"))
    p = Pair()
    p.ha, p.hb = ha, hb
    try:
        nodes.start(hb)
        nodes.start(ha)
        nodes.wait_healthy([ha, hb], timeout=60)  # the HTTP face is up before gRPC health says SERVING
        p.a, p.b = (HttpApi(nodes.runtime_info(h)["http"], h.token, TIMEOUT) for h in (ha, hb))
        yield p
    finally:
        for h in (ha, hb):
            assert nodes.terminate(h) == 0, nodes.tail(h)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def document(subject: str, number: int) -> dict:
    return {"subject": subject, "documentId": f"{A},2026/11/29,{number}/UBND-VP", "content": "Kính gửi Sở B",
            "attachments": [
                {"name": "giay-moi.pdf", "contentType": "application/pdf", "data": b64(PDF)},
                {"name": "bang-ke.xlsx", "contentType": "application/vnd.ms-excel", "data": b64(XLSX)}]}


def send_arrived(p: Pair, subject: str, number: int) -> tuple[str, str]:
    """A sends over HTTP; (message id, doc id) once B's event stream said it arrived."""
    with SseWatch(p.b, sent=False) as watch:
        answer = p.a.mailbox("Send", {"document": document(subject, number), "recipients": [B]})
        [sent] = answer["envelopes"]
        assert sent["recipient"] == B and answer["docId"]
        watch.wait(lambda evs: any(is_a(e["type"], ARRIVED) and e["messageId"] == sent["messageId"] for e in evs), TIMEOUT)
    return sent["messageId"], answer["docId"]


def test_send_with_two_attachments_list_fetch_ack(pair):
    with SseWatch(pair.a, inbox=False) as sender_side:
        mid, _ = send_arrived(pair, "Về việc tổ chức hội nghị", 1)
        events = sender_side.wait(lambda evs: any(is_a(e["type"], DELIVERED) and e["messageId"] == mid for e in evs),
                                  TIMEOUT)
    delivered = next(e for e in events if e["messageId"] == mid)
    assert delivered["recipient"] == B and int(delivered["timeMs"]) > 0  # int64 as a string, as the mapping says

    inbox = pair.b.mailbox("ListInbox", {"onlyNew": True})
    entry = next(e for e in inbox["entries"] if e["messageId"] == mid)
    assert (entry["sender"], entry["kind"], entry["subject"], entry["acked"]) == (A, "DOCUMENT", "Về việc tổ chức hội nghị",
                                                                               False)
    assert inbox["hasMore"] is False  # defaults are written out

    fetched = pair.b.mailbox("Fetch", {"messageId": mid})
    doc = fetched["payload"]["document"]
    assert [(a["name"], base64.b64decode(a["data"])) for a in doc["attachments"]] == [
        ("giay-moi.pdf", PDF), ("bang-ke.xlsx", XLSX)]
    assert fetched["signatureVerified"] is True and fetched["entry"]["messageId"] == mid
    assert [h["code"] for h in fetched["path"]] == [A, B]

    assert pair.b.mailbox("Ack", {"messageId": mid}) == {"wasNew": True}
    assert pair.b.mailbox("Ack", {"message_id": mid}) == {"wasNew": False}  # proto field names are read too
    assert mid not in {e["messageId"] for e in pair.b.mailbox("ListInbox", {"onlyNew": True})["entries"]}


def test_statuses_03_to_06_arrive_and_track_shows_them(pair):
    mid, doc_id = send_arrived(pair, "Báo cáo quý", 2)
    with SseWatch(pair.a, sent=False) as sender_inbox:
        for code in ("03", "04", "05", "06"):
            answer = pair.b.mailbox("SetStatus", {"messageId": mid, "statusCode": code, "description": f"bước {code}",
                                                  "staffInfo": {"staff": "Nguyễn Văn A", "department": "VP"}})
            assert answer["messageId"]
        sender_inbox.wait(lambda evs: {e.get("statusCode") for e in evs
                                       if is_a(e["type"], ARRIVED) and e.get("refMessageId") == mid} >= {"03", "04", "05", "06"},
                          TIMEOUT)
    track = pair.a.mailbox("Track", {"docId": doc_id})
    [recipient] = track["recipients"]
    codes = [s["statusCode"] for s in recipient["statuses"]]
    assert codes[-4:] == ["03", "04", "05", "06"] and recipient["latestStatus"] == "06"
    assert is_a(recipient["state"], "delivered")


def test_a_step_the_rules_refuse_is_409_with_its_reason(pair):
    mid, _ = send_arrived(pair, "Công văn", 3)
    status, body = pair.b.call("/v1/mailbox/SetStatus", {"messageId": mid, "statusCode": "06"})
    assert (status, body["error"]["reason"], body["error"]["status"]) == (409, "BAD_STEP", "FAILED_PRECONDITION")
    assert body["error"]["metadata"] == {"current_status": "01", "allowed": "02,03"}


def test_client_key_makes_a_send_happen_once(pair):
    before = len(pair.a.mailbox("ListSent", {"limit": 1000})["entries"])
    request = {"document": document("Gửi một lần", 4), "recipients": [B], "clientKey": "http-send-1"}
    first = pair.a.mailbox("Send", request)
    assert pair.a.mailbox("Send", request) == first
    assert len(pair.a.mailbox("ListSent", {"limit": 1000})["entries"]) == before + 1
    status, body = pair.a.call("/v1/mailbox/Send", {**request, "recipients": [B, A]})
    assert (status, body["error"]["reason"]) == (409, "KEY_REUSED")
    assert len(pair.a.mailbox("ListSent", {"limit": 1000})["entries"]) == before + 1


def test_a_key_given_over_grpc_answers_over_http_the_same(pair):
    request = mpb.SendRequest(recipients=[B], client_key="both-faces-1")
    request.document.subject, request.document.document_id = "Hai mặt", f"{A},2026/11/29,5/UBND-VP"
    grpc_client = pair.ha.client(TIMEOUT)
    try:
        first = grpc_client._call(grpc_client.stub.Send, request)
    finally:
        grpc_client.close()
    again = pair.a.mailbox("Send", json_format.MessageToDict(request))
    assert again == json_format.MessageToDict(first, always_print_fields_with_no_presence=True)


def test_http_answers_what_grpc_answers(pair):
    grpc_client = pair.ha.client(TIMEOUT)
    try:
        me = grpc_client.whoami()
    finally:
        grpc_client.close()
    assert pair.a.mailbox("WhoAmI") == json_format.MessageToDict(me, always_print_fields_with_no_presence=True)
    assert int(pair.a.mailbox("CountPending")["total"]) >= 0  # uint64: a string
    stats = pair.a.ok("/v1/stats/Get", {})
    assert A in {row["code"] for row in stats["agencies"]}


def test_watch_of_nothing_is_refused_before_the_stream_starts(pair):
    status, body = pair.a.call("/v1/mailbox/Watch", {})
    assert (status, body["error"]["reason"]) == (400, "INVALID_REQUEST")


def test_openapi_is_served_without_the_token_and_is_the_checked_in_one(pair):
    status, headers, body = pair.a.raw("GET", "/v1/openapi.json", headers={})
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert json.loads(body) == json.loads((ROOT / "docs" / "openapi.json").read_text())


def test_health_is_open_and_serving(pair):
    status, _, body = pair.a.raw("GET", "/v1/health", headers={})
    assert (status, json.loads(body)) == (200, {"status": "SERVING"})
