"""Text from outside (a peer, a client, an admin) made safe to put on a line someone reads.

One function, used by the log formatter on every line it writes (node.logs) and where outside text
is stored and shown to others (an operator's purge reason, a non-delivery notice's detail): a
newline in a peer's name forged a log line of its own ("... AUDIT CHAIN BROKEN"), and an ESC
sequence in a purge reason cleared the screen of whoever read the log, the audit table or the
notice. Every character that is not printable (C0 and C1 controls, newline, tab, ESC, DEL, line and
paragraph separators, bidirectional overrides) is written as its Python escape (`\\n`, `\\x1b`,
`\\u202e`); Vietnamese letters, combining marks and spaces stay as they are.
"""
from __future__ import annotations

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _escaped(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    n = ord(ch)
    return f"\\x{n:02x}" if n <= 0xFF else f"\\u{n:04x}" if n <= 0xFFFF else f"\\U{n:08x}"


def escape(text: object, *, keep_newlines: bool = False, backslash: bool = False) -> str:
    """`text` (str() of anything else) on one line, every non-printable character escaped.

    `backslash`: the backslash is escaped too, so what is shown cannot be mistaken for an escape
    (node.terminal, for what an operator reads); `keep_newlines`: LF kept (a document's content)."""
    text = text if isinstance(text, str) else str(text)
    if text.isprintable() and not (backslash and "\\" in text):
        return text
    return "".join(ch if (ch.isprintable() and not (backslash and ch == "\\")) or (keep_newlines and ch == "\n")
                   else _escaped(ch) for ch in text)
