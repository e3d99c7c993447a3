"""What a field from outside may hold: agency records, endpoints, codes that twin a QCVN code.

An agency record travels: its parent stores it, logs it, and hands it to anyone who looks the
agency up. Unbounded, one registered name of 3 MiB grew every log and answer by as much; a name
with a newline or a terminal escape forged log lines. So every field of a record has a bound
(OVER_LIMIT), text holds no control character (UNPRINTABLE), an endpoint is a host and a
port and nothing a dialler reads otherwise (`unix:…`, `dns:///…`: BAD_ENDPOINT), and no code may
differ from a QCVN 102 code only by letter case (CASE_TWIN), since whoever held such a twin
received mail meant for the real agency by one mistyped letter.
"""
from __future__ import annotations

import ipaddress
import re

from .codes import ROOT, case_twin_of, is_identifier
from .config import NAME_LENGTH  # characters of an agency name: node.name is held to it at start-up
from .errors import Reason, Rejected
from .limits import over
from .pb import registry_pb2 as rpb

ENDPOINT_LENGTH = 262      # a 253-character DNS name, brackets, a colon and 5 digits
CERT_BYTES = 8 << 10       # a node certificate is about 700 bytes
SEAL_KEY_BYTES = 256       # a P-256 public key (SPKI DER) is 91 bytes
MAX_LEVEL = 16             # national → commune is 4; odd codes add a few
RECORD_BYTES = 16 << 10    # the serialised record as signed: all of the above, with room
SIGNATURE_BYTES = 512      # an ECDSA P-256 signature (DER) is at most 72 bytes

GRPC_SCHEMES = frozenset({"unix", "unix-abstract", "vsock", "dns", "ipv4", "ipv6", "xds", "google-c2p"})
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"  # as node.config's host:port (underscores too)
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_HOST_PORT = re.compile(r"\[([0-9A-Fa-f:.]+)\]:([0-9]{1,5})|([A-Za-z0-9_.-]+):([0-9]{1,5})")


def check_text(value: str, field: str, limit: int) -> None:
    """A text field a person reads (a name): at most `limit` characters, every one printable."""
    if len(value) > limit:
        raise over(f"{field} length", len(value), limit, field)
    for i, ch in enumerate(value):
        if not ch.isprintable():
            raise Rejected(Reason.UNPRINTABLE, f"{field} has U+{ord(ch):04X} at position {i + 1}; "
                           "control and other unprintable characters are not allowed", field=field)


def endpoint_problem(value: str) -> str | None:
    """Why `value` is not `host:port` with a DNS name or an IP address and a port 1-65535 (None if it is)."""
    m = _HOST_PORT.fullmatch(value)
    if m is None:
        return "expected host:port (a DNS name or an IP address, then a port)"
    bracketed = m.group(1) is not None
    host, port = m.group(1, 2) if bracketed else m.group(3, 4)
    if bracketed:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "the part in brackets is not an IPv6 address"
    elif re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return "not an IPv4 address"
    elif len(host) > 253 or not _HOSTNAME.fullmatch(host):
        return "not a DNS name"
    elif host.lower() in GRPC_SCHEMES:
        return f"{host}: is how a gRPC target names another kind of address, not a host"
    if not 1 <= int(port) <= 65535:
        return "the port must be 1-65535"
    return None


def check_endpoint(value: str, field: str = "endpoint") -> None:
    if len(value) > ENDPOINT_LENGTH:
        raise over(f"{field} length", len(value), ENDPOINT_LENGTH, field)
    problem = endpoint_problem(value)
    if problem is not None:
        raise Rejected(Reason.BAD_ENDPOINT, f"{field} {value[:80]!r}: {problem}", field=field)


def check_code(code: str, field: str = "code") -> None:
    """CASE_TWIN for a code that differs from a QCVN 102 code (or the root's) only by letter case."""
    twin = case_twin_of(code)
    if twin is not None:
        raise Rejected(Reason.CASE_TWIN, f"{field} {code!r} differs from the QCVN 102 code {twin} only by "
                       "letter case; codes are case-sensitive and such a twin is nobody's", field=field)


def check_signed_record(signed: rpb.SignedRecord) -> None:
    """The sizes of a signed record, before its bytes are parsed."""
    for name, value, limit in (("record", signed.record, RECORD_BYTES), ("signature", signed.signature, SIGNATURE_BYTES),
                               ("renewal_signature", signed.renewal_signature, SIGNATURE_BYTES)):
        if len(value) > limit:
            raise over(f"agency record {name} size", len(value), limit, name)


def check_record(record: rpb.AgencyRecord) -> None:
    """Every field of a parsed agency record, each with its own reason (see the module's docstring)."""
    if not is_identifier(record.code):
        check_code(record.code, "code")
        raise Rejected(Reason.INVALID_REQUEST, f"code {record.code[:40]!r} is not an agency code", field="code")
    if record.parent and record.parent != ROOT and not is_identifier(record.parent):
        check_code(record.parent, "parent")
        raise Rejected(Reason.INVALID_REQUEST, f"parent {record.parent[:40]!r} is not an agency code",
                       field="parent")
    check_text(record.name, "name", NAME_LENGTH)
    check_endpoint(record.endpoint)
    if record.level > MAX_LEVEL:
        raise over("level", record.level, MAX_LEVEL, "level")
    if len(record.cert_der) > CERT_BYTES:
        raise over("cert_der size", len(record.cert_der), CERT_BYTES, "cert_der")
    if len(record.seal_key) > SEAL_KEY_BYTES:
        raise over("seal_key size", len(record.seal_key), SEAL_KEY_BYTES, "seal_key")
