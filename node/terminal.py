"""Text that came from outside, made safe to print on an operator's terminal.

Attachment names, subjects, agency names, reasons and descriptions are chosen by other agencies
(or a packet's author). Printed as received, an ESC starts a terminal escape sequence (recolour,
retitle, rewrite the screen), a CR or LF forges a line of the output ("signature verified"), a C1
control (U+009B is a one-byte CSI) does what ESC does, and a bidi override (U+202E) shows a name
backwards (`fdp.exe` read as `exe.pdf`). `shown` escapes every character Python does not call
printable (the C0 and C1 controls, DEL, format characters such as the bidi controls and zero-width
ones, line and paragraph separators) as a backslash escape, and the backslash itself, so what is
printed is unambiguous and still readable Vietnamese. The CLI prints every outside string through
it (`shown_json` for --json output); `node.errors.bounded` is the other way, for what travels:
lossy ("?") and cut to a length.
"""
from __future__ import annotations

from .escaping import escape


def shown(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with every non-printable character (and the backslash) escaped; with `keep_newlines`,
    LF is kept (a multi-line document content), everything else escaped all the same."""
    return escape(text, keep_newlines=keep_newlines, backslash=True)


def shown_json(text: str) -> str:
    """JSON text (from json.dumps or MessageToJson) with the non-printable characters they leave raw
    inside strings (C1 controls, bidi and other format characters, U+2028/2029) written as \\u escapes:
    still the same JSON, now safe on a terminal. Newlines and spaces outside strings are kept."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or ch in "\n ":
            out.append(ch)
            continue
        n = ord(ch)
        if n < 0x10000:
            out.append(f"\\u{n:04x}")
        else:
            n -= 0x10000
            out.append(f"\\u{0xD800 + (n >> 10):04x}\\u{0xDC00 + (n & 0x3FF):04x}")
    return "".join(out)
