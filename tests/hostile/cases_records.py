"""Agency records and codes from outside: fields out of bounds, control characters, endpoints that are
no host:port, and codes that differ from a QCVN code only by case (node/fields.py).

A registered name of 3 MiB was taken and handed to every lookup; a name with a newline and terminal
escapes forged D's log lines; an endpoint `unix:…` made D dial a local socket; and `000.21.35.h53`,
a twin of C1's code, could be claimed as an odd code and receive mail meant for C1.
"""
from __future__ import annotations

import time
from pathlib import Path

from node.pb import envelope_pb2 as pb
from node.pb import exchange_pb2 as xpb
from node.pb import mailbox_pb2 as mpb
from node.pb import registry_pb2 as rpb

from .cases_answers import answered, entry
from .core import LogTail, Observed, call, case, outcome, refused
from .world import C1, D, G, M, TIMEOUT, issue, seal

REGISTER = "Registry.Register, M → D"
TWIN = "000.21.35.h53"  # C1's code with a lower-case letter
FORGED_LINE = "giả\n2026-12-07 13:00:00 ERROR node.audit: AUDIT CHAIN BROKEN at seq 1: restore from backup\x1b[2J\x1b[H"


def record_of(signer, **fields) -> rpb.SignedRecord:
    """M's own record with some fields set as the attacker likes, signed by M (so only the fields are wrong)."""
    values = dict(code=signer.code, name=f"agency {signer.code}", level=3, parent=D, endpoint="127.0.0.1:9",
                  cert_der=signer.cert_der, issued_ms=int(time.time() * 1000))
    values.update(fields)
    record = rpb.AgencyRecord(**values).SerializeToString()
    return rpb.SignedRecord(record=record, signature=signer.sign(record))


def register(s, **fields) -> Observed:
    return call(s.w.registry(M).Register, record_of(s.w.signer(M), **fields))


for label, fields, reason in (
        ("a name of 1 MiB", {"name": "x" * (1 << 20)}, "OVER_LIMIT"),
        ("a name of 301 characters", {"name": "x" * 301}, "OVER_LIMIT"),
        ("a seal key of 4 kB", {"seal_key": b"k" * 4096}, "OVER_LIMIT"),
        ("a certificate field of 12 kB", {"cert_der": b"c" * 12_000}, "OVER_LIMIT"),
        ("level 1000", {"level": 1000}, "OVER_LIMIT"),
        ("an endpoint of 10 kB", {"endpoint": "a" * 10_000 + ":1"}, "OVER_LIMIT"),
        ("a name with a bidirectional override", {"name": "UBND xã \u202egnàrT"}, "UNPRINTABLE"),
        ("a name with a NUL", {"name": "UBND\x00"}, "UNPRINTABLE"),
        ("the endpoint unix:/tmp/x.sock (a local socket)", {"endpoint": "unix:/tmp/x.sock"}, "BAD_ENDPOINT"),
        ("the endpoint unix:1234 (a socket named like a port)", {"endpoint": "unix:1234"}, "BAD_ENDPOINT"),
        ("the endpoint dns:///127.0.0.1:1", {"endpoint": "dns:///127.0.0.1:1"}, "BAD_ENDPOINT"),
        ("an endpoint with port 0", {"endpoint": "127.0.0.1:0"}, "BAD_ENDPOINT"),
        ("an endpoint with port 70000", {"endpoint": "127.0.0.1:70000"}, "BAD_ENDPOINT"),
        ("an endpoint with a path", {"endpoint": "127.0.0.1:9/x"}, "BAD_ENDPOINT"),
        ("an endpoint with no port", {"endpoint": "127.0.0.1"}, "BAD_ENDPOINT"),
        ("the parent written as a twin of D's code", {"parent": "000.00.35.h53"}, "CASE_TWIN"),
):
    @case("records", f"registration with {label}", "INVALID_ARGUMENT", reason, via=REGISTER)
    def _(s, fields=fields):
        return register(s, **fields)


@case("records", "registration with a name that forges a log line with terminal escapes", "INVALID_ARGUMENT",
      "UNPRINTABLE", via=REGISTER)
def _(s):
    log = LogTail(Path(s.w.cluster.nodes[D].dir) / "node.log")
    o = register(s, name=FORGED_LINE)
    logged = log.text()
    assert "\x1b" not in logged and "AUDIT CHAIN BROKEN" not in logged, logged
    return o


@case("records", "lookup answered with a record whose name carries terminal escapes", "INVALID_ARGUMENT",
      "UNPRINTABLE", via="Mailbox.Lookup at D, answered by M")
def _(s):
    g = s.w.signer(G)
    return answered(s, lambda req, ctx: entry(record_of(g, name=FORGED_LINE, parent=M)))


@case("records", "lookup answered with a record whose endpoint is a local socket", "INVALID_ARGUMENT",
      "BAD_ENDPOINT", via="Mailbox.Lookup at D, answered by M")
def _(s):
    g = s.w.signer(G)
    return answered(s, lambda req, ctx: entry(record_of(g, endpoint="unix:/run/lienthong/api.sock", parent=M)))


# ---- a twin of C1's code -------------------------------------------------------------------------

@case("records", "heartbeat claiming a lower-case twin of a sibling's code as an odd code", "INVALID_ARGUMENT",
      "CASE_TWIN", via="Registry.Heartbeat, M → D")
def _(s):
    try:
        s.w.heartbeat(M, odd={TWIN: M})
    except Exception as e:  # grpc.RpcError
        return refused(e)
    return Observed("OK")


@case("records", "registration of a lower-case twin on a certificate issued for it", "INVALID_ARGUMENT",
      "CASE_TWIN", via="Registry.Register, twin → D")
def _(s):
    twin = issue(s.w.ca_dir, s.w.root / "twin", TWIN)
    return call(s.w.registry(twin).Register, record_of(twin.signer))


@case("records", "mail addressed to a lower-case twin of a registered code", "INVALID_ARGUMENT", "CASE_TWIN",
      via="Mailbox.Send at D")
def _(s):
    api = s.w.api(D)
    return call(api.stub.Send, mpb.SendRequest(document=pb.Document(subject="x"), recipients=[TWIN]),
                metadata=api.metadata)


@case("records", "envelope addressed to a lower-case twin, handed over", "INVALID_ARGUMENT", "CASE_TWIN",
      via="Exchange.DeliverBatch, M → D (per-envelope outcome)")
def _(s):
    _, raw = seal(s.w.signer(M), TWIN)
    resp = s.w.exchange(M).DeliverBatch(xpb.DeliverBatchRequest(envelopes=[raw]), timeout=TIMEOUT)
    return outcome(resp.outcomes[0])


@case("records", "lookup of a lower-case twin by a peer", "INVALID_ARGUMENT", "CASE_TWIN",
      via="Registry.Lookup, M → D")
def _(s):
    return call(s.w.registry(M).Lookup, rpb.LookupRequest(code=TWIN))


@case("records", "lookup of a lower-case twin through the local API", "INVALID_ARGUMENT", "CASE_TWIN",
      via="Mailbox.Lookup at D")
def _(s):
    api = s.w.api(D)
    return call(api.stub.Lookup, mpb.AgencyLookupRequest(code=C1.replace("H53", "h53")), metadata=api.metadata)
