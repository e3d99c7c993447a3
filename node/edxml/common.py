"""Names and the error type shared by the edXML reader and writer."""
from __future__ import annotations

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
"""QCVN 102:2016 namespace; the samples bind it both as default and as prefix `edXML`."""

DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
"""XML-DSig namespace. The real samples put `Signature` in the QCVN default namespace
instead, so both (and no namespace) are accepted for it."""

EXPORT_PREFIX = "edXML"
"""Prefix the writer binds to NS (besides the default namespace), as the samples do."""


def bare_cid(content_id: str) -> str:
    """A ContentId as compared: without surrounding space and a `cid:` prefix (RFC 2392 URL form),
    as the national library compares a manifest Reference with its Attachment."""
    s = content_id.strip()
    return s[4:] if s[:4].lower() == "cid:" else s


class EdxmlError(ValueError):
    """A packet that cannot be imported (or a message that cannot be exported).

    The message says where (line/column for XML syntax, element path for structure)
    and what is wrong, so an operator can fix the sending software without a debugger.
    `line`, `column` (1-based) and `path` are set when known.
    """

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None,
                 path: str | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column
        self.path = path
