"""The one error path, over a real gRPC server on port 0: a probe service under
lienthong.v1 raises what each test asks for, and the client reads the status back the way
any gRPC client would (google.rpc.Status details), with node.grpc_errors as a shortcut."""
from __future__ import annotations

import logging
import uuid
from concurrent import futures

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from node.api.auth import api_interceptors, call_metadata
from node.errors import REASON_METADATA_KEY, Reason, Rejected, naming
from node.grpc_errors import (DOMAIN, describe, detail_of, error_info, fields_of, metadata_of, reason_of,
                              rejected_of)
from node.interceptor import ErrorInterceptor

TIMEOUT = 10.0
SECRET = "sqlite3.OperationalError: /var/lib/lienthong/secret-path.db is locked"


TO_RAISE: dict[bytes, BaseException] = {}  # request bytes -> what the probe method raises


def _raise(key: bytes):
    raise TO_RAISE.pop(key)


def unary(request: bytes, context) -> bytes:
    _raise(request)


def stream(request: bytes, context):
    yield b"first"
    _raise(request)


def stream_at_once(request: bytes, context):
    _raise(request)  # a plain function, not a generator: refused before any message
    yield b"never"


def old_style(request: bytes, context) -> bytes:
    """A servicer outside lienthong.v1, translating by hand the way nodes used to."""
    context.set_trailing_metadata(((REASON_METADATA_KEY, "BAD_SIGNATURE"),))
    context.abort(grpc.StatusCode.PERMISSION_DENIED, "BAD_SIGNATURE: sender signature does not verify")


def text_only(request: bytes, context) -> bytes:
    context.abort(grpc.StatusCode.PERMISSION_DENIED, "BAD_SIGNATURE: looks like a reason, is only text")


HANDLERS = {
    "Unary": grpc.unary_unary_rpc_method_handler(unary),
    "Stream": grpc.unary_stream_rpc_method_handler(stream),
    "StreamAtOnce": grpc.unary_stream_rpc_method_handler(stream_at_once),
}


def serve(interceptors) -> tuple[grpc.Server, str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), interceptors=interceptors)
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler("lienthong.v1.Probe", HANDLERS),
        grpc.method_handlers_generic_handler("other.Probe", {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "OldStyle": grpc.unary_unary_rpc_method_handler(old_style),
            "TextOnly": grpc.unary_unary_rpc_method_handler(text_only),
        }),
    ))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
def channel():
    server, address = serve([ErrorInterceptor()])
    with grpc.insecure_channel(address) as ch:
        yield ch
    server.stop(0).wait()


def call_all(channel, method: str, exc: BaseException | None = None, metadata=()) -> tuple[grpc.RpcError, list]:
    """Call `method` asking it to raise `exc`: the RpcError that ends the call, and the messages before it."""
    key = uuid.uuid4().hex.encode()
    if exc is not None:
        TO_RAISE[key] = exc
    received = []
    with pytest.raises(grpc.RpcError) as info:
        if "Stream" in method:
            for message in channel.unary_stream(method)(key, timeout=TIMEOUT, metadata=metadata):
                received.append(message)
        else:
            channel.unary_unary(method)(key, timeout=TIMEOUT, metadata=metadata)
    return info.value, received


def call(channel, method: str, exc: BaseException | None = None, metadata=()) -> grpc.RpcError:
    err, received = call_all(channel, method, exc, metadata)
    assert received == ([b"first"] if method.endswith("/Stream") else [])  # a stream fails after what it sent
    return err


def details_of(err: grpc.RpcError) -> list:
    """The status details as a client in any language sees them (grpcio-status, no lienthong code)."""
    status = rpc_status.from_call(err)
    assert status is not None, "no google.rpc.Status in the trailers"
    assert (status.code, status.message) == (err.code().value[0], err.details())
    out = []
    for packed in status.details:
        for kind in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest):
            if packed.Is(kind.DESCRIPTOR):
                message = kind()
                packed.Unpack(message)
                out.append(message)
    return out


METHODS = ["/lienthong.v1.Probe/Unary", "/lienthong.v1.Probe/Stream", "/lienthong.v1.Probe/StreamAtOnce"]


@pytest.mark.parametrize("method", METHODS)
def test_a_rejection_is_its_status_with_error_info_and_the_detail_said_once(channel, method):
    err = call(channel, method, Rejected(Reason.NOT_FOUND, "no message 0f3a in this mailbox"))

    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert err.details() == "no message 0f3a in this mailbox"  # no `NOT_FOUND: ` in front any more
    [info] = details_of(err)
    assert (info.reason, info.domain, dict(info.metadata)) == ("NOT_FOUND", DOMAIN, {})
    assert (REASON_METADATA_KEY, "NOT_FOUND") in err.trailing_metadata()  # kept for older clients


@pytest.mark.parametrize("method", METHODS)
def test_a_named_field_is_a_bad_request_violation_too(channel, method):
    with pytest.raises(Rejected) as named:
        with naming("documents[2]"):
            raise Rejected(Reason.INVALID_REQUEST, "recipient 'x' is not an agency code", field="recipients[0]")
    err = call(channel, method, named.value)

    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "documents[2]: recipient 'x' is not an agency code"
    info, bad = details_of(err)
    assert (info.reason, dict(info.metadata)) == ("INVALID_REQUEST", {"field": "documents[2].recipients[0]"})
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("documents[2].recipients[0]", "documents[2]: recipient 'x' is not an agency code")]
    assert fields_of(err) == ["documents[2].recipients[0]"]


@pytest.mark.parametrize("method", METHODS)
def test_metadata_reaches_the_client(channel, method):
    err = call(channel, method, Rejected(Reason.BAD_STEP, "status 06 cannot follow current status 01",
                                         metadata={"current_status": "01", "allowed": "01,02,03"}))

    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    [info] = details_of(err)
    assert (info.reason, dict(info.metadata)) == ("BAD_STEP", {"current_status": "01", "allowed": "01,02,03"})
    assert fields_of(err) == []  # no field named: no BadRequest


@pytest.mark.parametrize("method", METHODS)
def test_an_unexpected_exception_is_internal_with_only_a_correlation_id(channel, method, caplog):
    with caplog.at_level(logging.ERROR, logger="node.interceptor"):
        err = call(channel, method, RuntimeError(SECRET))

    assert err.code() == grpc.StatusCode.INTERNAL
    [info] = details_of(err)
    assert info.reason == "INTERNAL"
    correlation_id = info.metadata["correlation_id"]
    assert len(correlation_id) >= 16 and set(info.metadata) == {"correlation_id"}
    assert err.details() == f"internal error; correlation id {correlation_id}"
    trailers = repr(err.trailing_metadata())
    for leak in ("secret-path", "OperationalError", "RuntimeError", "Traceback"):
        assert leak not in err.details() and leak not in trailers and leak not in repr(err.debug_error_string())
    [record] = [r for r in caplog.records if correlation_id in r.getMessage()]
    assert record.levelno == logging.ERROR and method in record.getMessage()
    assert record.exc_info and SECRET in str(record.exc_info[1])  # the operator gets the whole story


def test_methods_outside_lienthong_keep_grpc_default_handling(channel):
    """Health and reflection are grpcio's: the interceptor leaves foreign services alone."""
    err = call(channel, "/other.Probe/Unary", Rejected(Reason.NOT_FOUND, "x"))
    assert err.code() == grpc.StatusCode.UNKNOWN and error_info(err) is None


def test_reason_of_reads_error_info_first_then_the_trailer_never_the_text(channel):
    err = call(channel, "/lienthong.v1.Probe/Unary", Rejected(Reason.BAD_SIGNATURE))
    assert (reason_of(err), error_info(err).reason, detail_of(err)) == (
        "BAD_SIGNATURE", "BAD_SIGNATURE", "sender signature does not verify")

    old = call(channel, "/other.Probe/OldStyle")  # a node before ErrorInfo: only the trailer
    assert (error_info(old), reason_of(old)) == (None, "BAD_SIGNATURE")

    text = call(channel, "/other.Probe/TextOnly")  # a reason-looking prefix in the text is not a reason
    assert (error_info(text), reason_of(text), metadata_of(text)) == (None, None, {})


def test_a_peer_refusal_becomes_our_own_rejected(channel):
    sent = Rejected(Reason.BAD_STEP, "no take-back or change request is pending", field="status_code",
                    metadata={"current_status": "03", "allowed": ""})
    back = rejected_of(call(channel, "/lienthong.v1.Probe/Unary", sent))
    assert (back.reason, back.detail, back.field, back.metadata) == (sent.reason, sent.detail, sent.field, sent.metadata)


def test_describe_is_one_line_with_the_reason_when_it_adds_something(channel):
    step = call(channel, "/lienthong.v1.Probe/Unary", Rejected(Reason.BAD_STEP, "status 06 cannot follow 01"))
    assert describe(step) == "FAILED_PRECONDITION (BAD_STEP): status 06 cannot follow 01"
    found = call(channel, "/lienthong.v1.Probe/Unary", Rejected(Reason.NOT_FOUND, "no message 0f3a"))
    assert describe(found) == "NOT_FOUND: no message 0f3a"


@pytest.mark.parametrize("method", METHODS)
def test_the_token_check_answers_through_the_same_path(method):
    server, address = serve(api_interceptors("s3cret"))
    try:
        with grpc.insecure_channel(address) as ch:
            denied, before = call_all(ch, method, metadata=call_metadata("wrong"))
            passed = call(ch, method, Rejected(Reason.NOT_FOUND), metadata=call_metadata("s3cret"))
    finally:
        server.stop(0).wait()
    assert before == []  # the method never ran
    assert (denied.code(), denied.details()) == (grpc.StatusCode.UNAUTHENTICATED, "missing or wrong API token")
    [info] = details_of(denied)
    assert (info.reason, info.domain) == ("UNAUTHENTICATED", DOMAIN)
    assert (passed.code(), reason_of(passed)) == (grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
