"""Bad input on the HTTP/JSON face of a real node process, with a plain HTTP client: a wrong or missing
token, an unknown field, malformed JSON, a body over the limit, a wrong type. Each is a clear error with
its HTTP status, reason code and field (as gRPC's ErrorInfo and BadRequest name them), and nothing is
queued; refusals of the servicers themselves come through with their own reasons."""
from __future__ import annotations

import base64
import json
import time

import pytest

from node.api.http_json import body_limit
from node.api.http_routes import routes
from node.api.mailbox import MAX_BATCH
from node.harness import nodes
from node.harness.http_api import HttpApi, SseWatch, WatchRefused
from node.harness.nodes import NodeSpec
from node.runtime import MAX_WATCHERS

A, B = "000.00.01.H53", "000.00.02.H53"
TIMEOUT = 20.0
MAX_SIZE = 64 * 1024
SEND = "/v1/mailbox/Send"
MAX_RECIPIENTS, MAX_ATTACHMENTS = 3, 2


class Solo:
    ha: nodes.NodeHandle
    api: HttpApi


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    specs = [NodeSpec(code, f"Sở {code[-5]}", extra={"messages": {"max_size": MAX_SIZE},
                                                     "limits": {"recipients_per_send": MAX_RECIPIENTS,
                                                                "attachments_per_document": MAX_ATTACHMENTS},
                                                     "api": {"http_listen": f"127.0.0.1:{nodes.free_port()}"}})
             for code in (A, B)]
    ha, hb = nodes.pair(tmp_path_factory.mktemp("http-refusals"), *specs)
    s = Solo()
    s.ha = ha
    try:
        nodes.start(hb)
        nodes.start(ha)
        nodes.wait_healthy([ha, hb], timeout=60)
        s.api = HttpApi(nodes.runtime_info(ha)["http"], ha.token, TIMEOUT)
        yield s
    finally:
        for h in (ha, hb):
            assert nodes.terminate(h) == 0, nodes.tail(h)


def good_send(**extra) -> dict:
    return {"document": {"subject": "Giấy mời", "documentId": f"{A},2026/11/29,9/UBND-VP",
                         "attachments": [{"name": "a.pdf", "data": base64.b64encode(b"%PDF-1.7").decode()}]},
            "recipients": [B], **extra}


def sent_count(api: HttpApi) -> int:
    return len(api.mailbox("ListSent", {"limit": 1000})["entries"])


def refused(node, path: str, body, status: int, reason: str, field: str | None, **kw) -> dict:
    """Call, check the refusal (status, reason, field in ErrorInfo and BadRequest), and that nothing was queued."""
    before = sent_count(node.api)
    got, answer = node.api.call(path, body, **kw)
    error = answer["error"]
    assert (got, error["code"], error["reason"]) == (status, status, reason), answer
    assert error.get("field") == field, answer
    [info] = [d for d in error["details"] if d["@type"].endswith("google.rpc.ErrorInfo")]
    assert (info["reason"], info["domain"], info.get("metadata", {}).get("field")) == (reason, "lienthong.v1", field)
    violations = [v["field"] for d in error["details"] if d["@type"].endswith("google.rpc.BadRequest")
                  for v in d["fieldViolations"]]
    assert violations == ([field] if field else [])
    assert error["message"]
    assert sent_count(node.api) == before, "a refused request queued something"
    return error


def test_a_good_send_goes_through(node):  # the control: the bodies below differ from it by one fault each
    before = sent_count(node.api)
    node.api.mailbox("Send", good_send())
    assert sent_count(node.api) == before + 1


# ---- the token --------------------------------------------------------------------------

TOKENS = {
    "missing": lambda token: None,
    "wrong": lambda token: token[::-1],
    "empty": lambda token: "",
}


@pytest.mark.parametrize("route", [r.path for r in routes()])
@pytest.mark.parametrize("token", list(TOKENS))
def test_every_route_needs_the_token(node, route, token):
    body = good_send() if route == SEND else {}
    error = refused(node, route, body, 401, "UNAUTHENTICATED", None, token=TOKENS[token](node.ha.token))
    assert error["status"] == "UNAUTHENTICATED"


def test_a_token_without_bearer_is_refused_and_says_how(node):
    status, headers, body = node.api.raw("POST", SEND, json.dumps(good_send()).encode(),
                                         {"Authorization": node.ha.token, "Content-Type": "application/json"})
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    assert json.loads(body)["error"]["reason"] == "UNAUTHENTICATED"


# ---- the body ---------------------------------------------------------------------------

def _nested_unknown() -> dict:
    body = good_send()
    body["document"]["attachments"][0]["size"] = 8
    return body


def _bad_base64() -> dict:
    body = good_send()
    body["document"]["attachments"].append({"name": "b.pdf", "data": "không phải base64"})
    return body


BAD_BODIES = {
    "unknown field": (good_send(colour="red"), "colour"),
    "unknown nested field": (_nested_unknown(), "document.attachments[0].size"),
    "malformed JSON": (b'{"document": {"subject": "Gi', None),
    "not UTF-8": ('{"document": {"subject": "Giấy mời"}}'.encode("utf-16"), None),
    "not an object": (b'[{"document": {}}]', "(body)"),
    "NaN": (b'{"priority": NaN}', None),
    "key twice": (b'{"recipients": ["000.00.02.H53"], "recipients": []}', "recipients"),
    "name and json name both": (good_send(lifetime_seconds=60, lifetimeSeconds=60), "lifetime_seconds"),
    "recipients a string": (good_send(recipients=B), "recipients"),
    "recipient a number": (good_send(recipients=[2]), "recipients[0]"),
    "priority a word": (good_send(priority="high"), "priority"),
    "priority a fraction": (good_send(priority=1.5), "priority"),
    "priority negative": (good_send(priority=-1), "priority"),
    "lifetime not digits": (good_send(lifetimeSeconds="7d"), "lifetime_seconds"),
    "subject a number": ({**good_send(), "document": {"subject": 5}}, "document.subject"),
    "document an array": ({**good_send(), "document": []}, "document"),
    "data not base64": (_bad_base64(), "document.attachments[1].data"),
    "kind unknown": ({"kinds": ["LETTER"]}, "kinds[0]"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_a_bad_body_is_refused_naming_the_field(node, case):
    body, field = BAD_BODIES[case]
    path = "/v1/mailbox/ListInbox" if case == "kind unknown" else SEND
    error = refused(node, path, body, 400, "INVALID_REQUEST", field)
    assert error["status"] == "INVALID_ARGUMENT"


def test_a_body_declared_over_the_limit_is_refused_before_it_is_read(node):
    """Only the headers are sent: the answer comes without the node waiting for a byte of the body."""
    before = sent_count(node.api)
    limit = body_limit(MAX_SIZE)
    conn = node.api.connection()
    try:
        conn.putrequest("POST", SEND)
        conn.putheader("Authorization", f"Bearer {node.ha.token}")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(limit + 1))
        conn.endheaders()
        resp = conn.getresponse()
        error = json.loads(resp.read())["error"]
    finally:
        conn.close()
    assert (resp.status, error["reason"], error["status"]) == (413, "TOO_LARGE", "RESOURCE_EXHAUSTED")
    assert error["metadata"] == {"limit": str(limit)} and "field" not in error
    assert sent_count(node.api) == before


def test_a_chunked_body_over_the_limit_is_refused(node):
    before = sent_count(node.api)
    limit = body_limit(MAX_SIZE)
    chunks = [b" " * 65536] * (limit // 65536) + [b" " * (limit % 65536 + 1)]
    conn = node.api.connection()
    try:
        conn.request("POST", SEND, body=iter(chunks), encode_chunked=True,
                     headers={"Authorization": f"Bearer {node.ha.token}", "Transfer-Encoding": "chunked"})
        resp = conn.getresponse()
        error = json.loads(resp.read())["error"]
    finally:
        conn.close()
    assert (resp.status, error["reason"]) == (413, "TOO_LARGE")
    assert sent_count(node.api) == before


def test_a_body_just_under_the_limit_is_read(node):
    """The limit leaves room for the largest message the gRPC API takes, as base64 inside JSON."""
    padding = " " * (body_limit(MAX_SIZE) - 200)
    status, answer = node.api.call("/v1/mailbox/CountPending", b"{" + padding.encode() + b"}")
    assert status == 200 and "total" in answer


# ---- refusals of the servicers, as over gRPC --------------------------------------------

def test_a_document_over_the_envelope_limit_is_413_too_large(node):
    body = good_send()
    body["document"]["attachments"].append({"name": "big.bin", "data": base64.b64encode(bytes(MAX_SIZE)).decode()})
    error = refused(node, SEND, body, 413, "TOO_LARGE", None)
    assert error["metadata"]["limit"] == str(MAX_SIZE) and int(error["metadata"]["size"]) > MAX_SIZE


def test_a_send_without_subject_names_the_field(node):
    refused(node, SEND, {"document": {"content": "x"}, "recipients": [B]}, 400, "INVALID_REQUEST", "document.subject")


@pytest.mark.parametrize("recipients, field", [([], "recipients"), ([A], "recipients[0]"), ([B, B], "recipients"),
                                               ([B, "not-a-code"], "recipients[1]"), (["abc"], "recipients[0]")])
def test_a_send_to_bad_recipients_queues_nothing(node, recipients, field):
    refused(node, SEND, good_send(recipients=recipients), 400, "INVALID_REQUEST", field)


def test_too_many_recipients_names_the_field_the_limit_and_the_count(node):
    recipients = [B, "000.00.03.H53", "000.00.04.H53", "000.00.05.H53"]
    error = refused(node, SEND, good_send(recipients=recipients), 400, "OVER_LIMIT", "recipients")
    assert (error["metadata"]["limit"], error["metadata"]["count"]) == (str(MAX_RECIPIENTS), "4")


def test_too_many_attachments_names_the_field_the_limit_and_the_count(node):
    body = good_send()
    body["document"]["attachments"] *= MAX_ATTACHMENTS + 1
    error = refused(node, SEND, body, 400, "OVER_LIMIT", "document.attachments")
    assert (error["metadata"]["limit"], error["metadata"]["count"]) == (str(MAX_ATTACHMENTS), str(MAX_ATTACHMENTS + 1))


def test_an_oversized_batch_names_the_field_the_limit_and_the_count(node):
    documents = [{"document": {"subject": "x"}, "recipients": [B]}] * (MAX_BATCH + 1)  # under the body limit
    error = refused(node, "/v1/mailbox/SendBatch", {"documents": documents}, 400, "INVALID_REQUEST", "documents")
    assert (error["metadata"]["limit"], error["metadata"]["count"]) == (str(MAX_BATCH), str(MAX_BATCH + 1))


@pytest.mark.parametrize("method", ["Fetch", "Ack", "SetStatus", "ExportEdxml"])
def test_an_unknown_message_is_404_naming_the_field(node, method):
    error = refused(node, f"/v1/mailbox/{method}", {"messageId": "0" * 32}, 404, "NOT_FOUND", "message_id")
    assert "0" * 32 in error["message"]


def test_an_unknown_route_and_a_wrong_method_answer_json(node):
    status, answer = node.api.call("/v1/mailbox/Sned", {})
    assert (status, answer["error"]["reason"]) == (404, "NOT_FOUND")
    status, headers, body = node.api.raw("GET", SEND, headers=node.api.headers())
    error = json.loads(body)["error"]
    assert (status, error["code"], error["status"], error["reason"]) == (405, 405, "UNIMPLEMENTED", "METHOD_NOT_ALLOWED")
    assert headers["allow"] == "POST" == error["metadata"]["allowed"]  # RFC 9110 (found by schemathesis)


@pytest.mark.parametrize("method, path", [("POST", "/v1/mailbox/WhoAmI"), ("GET", "/v1/health"), ("GET", SEND),
                                          ("POST", "/v1/mailbox/Sned"), ("GET", "/v1/openapi.json")])
def test_no_answer_names_the_server_software_or_its_version(node, method, path):
    _, headers, _ = node.api.raw(method, path, b"{}" if method == "POST" else None, node.api.headers())
    assert headers["server"] == "lienthong", headers


def test_watch_streams_over_the_cap_are_refused_and_a_closed_one_frees_its_place(node):
    watches = [SseWatch(node.api, registry=True) for _ in range(MAX_WATCHERS)]
    try:
        with pytest.raises(WatchRefused) as info:
            SseWatch(node.api)
        assert (info.value.status, info.value.body["error"]["reason"]) == (429, "TOO_MANY_STREAMS")
        assert "total" in node.api.mailbox("CountPending")  # the other calls are still served
        watches.pop().close()
        # the node hears of the close asynchronously: ask again until the place is back (bounded)
        until = time.monotonic() + TIMEOUT
        while True:
            try:
                watches.append(SseWatch(node.api))
                break
            except WatchRefused as e:
                assert e.body["error"]["reason"] == "TOO_MANY_STREAMS" and time.monotonic() < until
    finally:
        for w in watches:
            w.close()


def test_an_edxml_packet_that_does_not_parse_names_the_packet(node):
    body = {"packet": base64.b64encode(b"<edXMLEnvelope><unclosed>").decode(), "recipients": [B]}
    error = refused(node, "/v1/mailbox/ImportEdxml", body, 400, "MALFORMED", "packet")
    assert "edXML" in error["message"]


def test_a_directory_under_a_code_nobody_holds_names_the_parent(node):
    error = refused(node, "/v1/mailbox/Directory", {"parent": "000.00.99.H53"}, 404, "UNKNOWN_RECIPIENT", "parent")
    assert "000.00.99.H53" in error["message"]
