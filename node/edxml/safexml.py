"""A hardened expat front end that builds a small element tree.

Why not `xml.etree.ElementTree.fromstring`: packets come from other agencies' software,
so the parser must refuse DTDs outright (external entities, entity expansion bombs),
report syntax errors by line and column, tolerate the few stray bytes real senders put
before the XML declaration, and remember byte offsets so the XML-DSig `Signature`
element can be kept exactly as it was sent.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from xml.parsers import expat

from .common import EdxmlError

MAX_JUNK = 16
"""At most this many stray bytes before the first `<` are skipped (see docs/edxml.md)."""
MAX_DEPTH = 64
"""Elements nested deeper are refused (a real packet is under 10 deep)."""
MAX_NS_DECLS = 1000
"""Namespace declarations in one packet, all elements together."""

_SEP = "\x1f"  # never legal in XML names or namespace URIs, so splitting is unambiguous
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF32_BOMS = (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00")
_UTF16_BOMS = (b"\xfe\xff", b"\xff\xfe")  # after the UTF-32 ones: \xff\xfe starts both
_UTF16_NAMES = {"utf-16", "utf16", "utf-16le", "utf-16be", "ucs-2", "iso-10646-ucs-2"}
_UTF8_NAMES = {"utf-8", "utf8", "us-ascii", "ascii"}
_XML_NS = "http://www.w3.org/XML/1998/namespace"


class Scope:
    """The namespace bindings in force at an element: its own declarations, then its parent's.

    A chain, not a copied dict: 4,000 nested elements each declaring a prefix once cost
    ~220 MiB as copies (quadratic); as a chain each declaration is stored once."""

    __slots__ = ("_own", "_parent")

    def __init__(self, own: dict[str, tuple[str, int]], parent: "Scope | None") -> None:
        self._own, self._parent = own, parent

    def get(self, prefix: str, default=None) -> tuple[str, int] | None:
        scope: Scope | None = self
        while scope is not None:
            binding = scope._own.get(prefix)
            if binding is not None:
                return binding
            scope = scope._parent
        return default


_EMPTY_SCOPE = Scope({}, None)


@dataclass(slots=True, eq=False)
class Element:
    """One parsed element: resolved name, text, children and where it sat in the bytes."""

    ns: str | None                 # namespace URI, None when the element has none
    local: str
    prefix: str                    # "" when unprefixed
    attrs: dict[str, str]          # "{uri}local" for namespaced attributes
    attr_prefixes: tuple[str, ...]
    line: int                      # 1-based, in the caller's original bytes
    column: int                    # 1-based
    depth: int
    scope: Scope                   # prefix -> (uri, depth of the declaring element)
    start: int                     # byte offset of "<" in Parsed.data
    end_tag: int = -1              # byte offset expat reported at the end event
    children: list[Element] = field(default_factory=list)
    _parts: list[str] = field(default_factory=list)
    text: str = ""

    def iter(self) -> Iterator[Element]:
        """This element and all descendants, document order, without recursion."""
        stack = [self]
        while stack:
            el = stack.pop()
            yield el
            stack.extend(reversed(el.children))


@dataclass(slots=True)
class Parsed:
    root: Element
    data: bytes                    # the XML after any skipped leading bytes
    skipped: bytes                 # stray bytes skipped (BOM not included)


def _utf16_as_utf8(data: bytes, warn: Callable[[str], None]) -> bytes | None:
    """A UTF-16 packet with its byte order mark (Windows software saves XML so; the national library reads
    it) as UTF-8, the one encoding the rest reads; None when it is not one. Its encoding declaration may
    then say UTF-16 (the parser is told the bytes are UTF-8)."""
    if data.startswith(_UTF32_BOMS):
        raise EdxmlError("packet is UTF-32 (byte order mark found); edXML is read as UTF-8 or UTF-16",
                         line=1, column=1)
    if not data.startswith(_UTF16_BOMS):
        return None
    try:
        text = data.decode("utf-16")  # the BOM says which byte order, and is dropped
    except UnicodeDecodeError as e:
        raise EdxmlError(f"packet starts with a UTF-16 byte order mark but is not UTF-16: {e.reason} at byte "
                         f"{e.start}", line=1, column=1) from None
    warn("packet is UTF-16 (byte order mark): read as such")
    return text.encode("utf-8")


def _strip_leading(data: bytes, warn: Callable[[str], None]) -> tuple[bytes, bytes]:
    """Apply the leading-junk policy; return (xml bytes, skipped junk)."""
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM):]
    first = data.find(b"<")
    if first < 0:
        raise EdxmlError("no XML found: the packet contains no '<'", line=1, column=1)
    junk = data[:first]
    if not junk:
        return data, b""
    if len(junk) > MAX_JUNK:
        raise EdxmlError(
            f"{len(junk)} bytes before the first '<' (at most {MAX_JUNK} stray bytes are skipped): "
            f"{junk[:32]!r}", line=1, column=1)
    warn(f"skipped {len(junk)} stray byte(s) before the XML: {junk!r}")
    return data[first:], junk


UNDECLARED_NS = "urn:lienthong:undeclared-prefix:"
"""Namespace given to a prefix a packet uses without declaring it (UNDECLARED_NS + prefix)."""
MAX_UNDECLARED = 8
"""Undeclared prefixes recovered per packet (each costs one more parse); more is an error."""

_QNAME = re.compile(rb"<([^\s/>]+)")
_NCNAME = re.compile(r"[^\W\d][\w.\-]*")
_ATTR = re.compile(rb"""\s([^\s=/>]+)\s*=\s*(?:"[^"]*"|'[^']*')""")


class _Unbound(Exception):
    """A start tag uses prefixes nothing declares (the parse stops there)."""

    def __init__(self, prefixes: list[str], line: int, column: int, root_start: int) -> None:
        super().__init__(prefixes)
        self.prefixes, self.line, self.column, self.root_start = prefixes, line, column, root_start


def parse(data: bytes, warn: Callable[[str], None], *, max_depth: int = MAX_DEPTH,
          max_ns_decls: int = MAX_NS_DECLS, recover_prefixes: bool = True) -> Parsed:
    """Parse a packet into an Element tree, refusing DTDs, non-UTF-8 encodings and nesting or
    namespace declarations beyond the limits (memory stays linear in the packet's size).

    A prefix used but never declared (the national library is not namespace-aware, so
    packets in the field do this) is recovered when `recover_prefixes`: the packet is read
    as if the root declared it, in the namespace UNDECLARED_NS + prefix, and a warning names
    the prefix and where it is first used. Raises EdxmlError with the position in the
    caller's original bytes.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"edXML must be bytes, not {type(data).__name__}")
    data = bytes(data)
    wide = _utf16_as_utf8(data, warn)
    xml, junk = _strip_leading(wide if wide is not None else data, warn)
    undeclared: dict[str, tuple[int, int]] = {}  # prefix -> where first used (line, column), in order
    root_start = -1
    while True:
        if undeclared:
            cut = _after_name(xml, root_start)
            decls = "".join(f' xmlns:{pre}="{UNDECLARED_NS}{pre}"' for pre in undeclared).encode("ascii")
            text = xml[:cut] + decls + xml[cut:]
            line_start = xml.rfind(b"\n", 0, cut) + 1
            shift = (xml.count(b"\n", 0, cut) + 1, len(xml[line_start:cut].decode("utf-8", "replace")), len(decls))
        else:
            text, shift = xml, None
        try:
            parsed = _parse_once(text, junk, shift, max_depth=max_depth, max_ns_decls=max_ns_decls,
                                 from_utf16=wide is not None)
        except _Unbound as u:
            new = [pre for pre in u.prefixes if pre not in undeclared]
            if not recover_prefixes or not new or len(undeclared) + len(new) > MAX_UNDECLARED:
                what = "".join(f" {pre!r}" for pre in u.prefixes)
                more = f" (more than {MAX_UNDECLARED} undeclared prefixes)" if recover_prefixes and new else ""
                raise EdxmlError(f"malformed XML at line {u.line}, column {u.column}: unbound prefix{what}{more}",
                                 line=u.line, column=u.column) from None
            for pre in new:
                undeclared[pre] = (u.line, u.column)
            if root_start < 0:
                root_start = u.root_start
            continue
        for pre, (line, col) in undeclared.items():
            warn(f"line {line}, column {col}: prefix {pre!r} is used but never declared; read as if declared "
                 "(its elements are taken as edXML, its attributes ignored)")
        return parsed


def _after_name(xml: bytes, start: int) -> int:
    """Offset just past the element name of the start tag at `start`."""
    i = start + 1
    while i < len(xml) and xml[i:i + 1] not in (b" ", b"\t", b"\r", b"\n", b"/", b">"):
        i += 1
    return i


def _parse_once(xml: bytes, junk: bytes, shift: tuple[int, int, int] | None, *, max_depth: int,
                max_ns_decls: int, from_utf16: bool = False) -> Parsed:
    # Positions expat reports are relative to `xml`; shift them back onto the original:
    # past the stray bytes, and before the declarations inserted for undeclared prefixes.
    junk_lines = junk.count(b"\n")
    junk_cols = len(junk) - (junk.rfind(b"\n") + 1)

    def pos(line: int, col0: int) -> tuple[int, int]:
        if shift is not None and line == shift[0] and col0 >= shift[1] + shift[2]:
            col0 -= shift[2]
        if line == 1:
            col0 += junk_cols
        return line + junk_lines, col0 + 1

    # bytes transcoded from UTF-16 are UTF-8 whatever their declaration says
    p = expat.ParserCreate("UTF-8" if from_utf16 else None, namespace_separator=_SEP)
    p.namespace_prefixes = True
    p.buffer_text = True
    p.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def refuse(what: str) -> EdxmlError:
        line, col = pos(p.CurrentLineNumber, p.CurrentColumnNumber)
        return EdxmlError(f"line {line}, column {col}: {what} refused "
                          "(DTDs and entity declarations are not allowed in edXML)", line=line, column=col)

    def on_doctype(name, sysid, pubid, has_internal):  # noqa: ANN001
        raise refuse(f"DOCTYPE declaration <!DOCTYPE {name}>")

    def on_entity(name, *rest):  # noqa: ANN001
        raise refuse(f"ENTITY declaration {name!r}")

    def on_external(context, base, sysid, pubid):  # noqa: ANN001
        raise refuse(f"external entity reference {sysid!r}")

    def on_xmldecl(version, encoding, standalone):  # noqa: ANN001
        if encoding is not None and encoding.lower() not in _UTF8_NAMES | (_UTF16_NAMES if from_utf16 else set()):
            line, col = pos(p.CurrentLineNumber, p.CurrentColumnNumber)
            raise EdxmlError(f"line {line}, column {col}: encoding {encoding!r} not supported; "
                             "edXML is read as UTF-8 only", line=line, column=col)

    stack: list[Element] = []
    pending: dict[str, str] = {}
    root_holder: list[Element] = []
    declared = [0]

    def limit(what: str) -> EdxmlError:
        line, col = pos(p.CurrentLineNumber, p.CurrentColumnNumber)
        return EdxmlError(f"line {line}, column {col}: {what}", line=line, column=col)

    def on_ns(prefix, uri):  # noqa: ANN001
        declared[0] += 1
        if declared[0] > max_ns_decls:
            raise limit(f"more than {max_ns_decls} namespace declarations")
        pending[prefix or ""] = uri or ""

    def on_start(name: str, attrs: dict[str, str]) -> None:
        parts = name.split(_SEP)
        if len(parts) == 1:
            ns, local, prefix = None, parts[0], ""
        elif len(parts) == 2:
            ns, local, prefix = parts[0], parts[1], ""
        else:
            ns, local, prefix = parts[0], parts[1], parts[2]
        depth = len(stack)
        if depth >= max_depth:
            raise limit(f"elements nested more than {max_depth} deep")
        scope = stack[-1].scope if stack else _EMPTY_SCOPE
        if pending:
            scope = Scope({pre: (uri, depth) for pre, uri in pending.items()}, scope)
            pending.clear()
        out_attrs: dict[str, str] = {}
        attr_prefixes: list[str] = []
        for aname, value in attrs.items():
            aparts = aname.split(_SEP)
            if len(aparts) == 1:
                out_attrs[aparts[0]] = value
            else:
                out_attrs["{%s}%s" % (aparts[0], aparts[1])] = value
                if len(aparts) == 3 and aparts[0] != _XML_NS:
                    attr_prefixes.append(aparts[2])
        line, col = pos(p.CurrentLineNumber, p.CurrentColumnNumber)
        el = Element(ns=ns, local=local, prefix=prefix, attrs=out_attrs, attr_prefixes=tuple(attr_prefixes),
                     line=line, column=col, depth=depth, scope=scope, start=p.CurrentByteIndex)
        if stack:
            stack[-1].children.append(el)
        else:
            root_holder.append(el)
        stack.append(el)

    def on_end(name: str) -> None:
        el = stack.pop()
        el.end_tag = p.CurrentByteIndex
        el.text = "".join(el._parts)
        el._parts = []

    def on_text(text: str) -> None:
        if stack:
            stack[-1]._parts.append(text)

    p.StartDoctypeDeclHandler = on_doctype
    p.EntityDeclHandler = on_entity
    p.UnparsedEntityDeclHandler = on_entity
    p.ExternalEntityRefHandler = on_external
    p.XmlDeclHandler = on_xmldecl
    p.StartNamespaceDeclHandler = on_ns
    p.StartElementHandler = on_start
    p.EndElementHandler = on_end
    p.CharacterDataHandler = on_text
    try:
        p.Parse(xml, True)
    except expat.ExpatError as e:
        line, col = pos(e.lineno, e.offset)
        if e.code == _UNBOUND_PREFIX:
            raise _Unbound(_unbound_in(xml, p.ErrorByteIndex, stack[-1].scope if stack else _EMPTY_SCOPE),
                           line, col, root_holder[0].start if root_holder else p.ErrorByteIndex) from None
        raise EdxmlError(f"malformed XML at line {line}, column {col}: {expat.errors.messages[e.code]}"
                         f"{_what_is_open(xml, p.ErrorByteIndex, e.code, stack)}", line=line, column=col) from None
    return Parsed(root=root_holder[0], data=xml, skipped=junk)


_UNBOUND_PREFIX = expat.errors.codes[expat.errors.XML_ERROR_UNBOUND_PREFIX]
_TAG_MISMATCH = expat.errors.codes[expat.errors.XML_ERROR_TAG_MISMATCH]
_NO_ELEMENTS = expat.errors.codes[expat.errors.XML_ERROR_NO_ELEMENTS]


def _qname(el: Element) -> str:
    return f"{el.prefix}:{el.local}" if el.prefix else el.local


def _what_is_open(xml: bytes, at: int, code: int, stack: list[Element]) -> str:
    """For a mismatched or missing end tag: which element is still open, and where it started."""
    if not stack or code not in (_TAG_MISMATCH, _NO_ELEMENTS):
        return ""
    top = stack[-1]
    opened = f"<{_qname(top)}> opened at line {top.line}, column {top.column}"
    if code == _TAG_MISMATCH:
        m = re.match(rb"</([^\s>]+)", xml[max(at - 2, 0):at + 300]) or re.match(rb"</([^\s>]+)", xml[at:at + 300])
        found = f"</{m.group(1).decode('utf-8', 'replace')}>" if m else "an end tag"
        return f": {found} where {opened} should be closed"
    return f": the packet ends while {opened} is not closed"


def _unbound_in(xml: bytes, at: int, scope: Scope) -> list[str]:
    """The prefixes of the start tag at `at` that neither it nor an ancestor declares."""
    tag = xml[at:_start_tag_end(xml, at)]
    m = _QNAME.match(tag)
    names = ([m.group(1)] if m else []) + _ATTR.findall(tag)
    declared = {n[6:] for n in names if n.startswith(b"xmlns:")}
    out: list[str] = []
    for n in names:
        if b":" not in n or n.startswith(b"xmlns:"):
            continue
        pre = n.split(b":", 1)[0]
        text = pre.decode("utf-8", "replace")
        if pre in declared or text in ("xml", "xmlns") or scope.get(text) is not None or text in out:
            continue
        if not _NCNAME.fullmatch(text):
            return []  # not a name a declaration could bind: left to the error as expat reports it
        out.append(text)
    return out



def _start_tag_end(data: bytes, start: int) -> int:
    """Offset just past the start tag at `start`; quote-aware because '>' may sit in attribute values."""
    quote = 0
    i = start
    n = len(data)
    while i < n:
        c = data[i]
        if quote:
            if c == quote:
                quote = 0
        elif c in (0x22, 0x27):
            quote = c
        elif c == 0x3E:
            return i + 1
        i += 1
    raise EdxmlError("unterminated start tag")  # unreachable after a successful parse


def source_bytes(parsed: Parsed, el: Element) -> bytes:
    """The exact bytes of `el` as sent, from its '<' to the end of its end tag."""
    data = parsed.data
    head_end = _start_tag_end(data, el.start)
    if data[head_end - 2:head_end] == b"/>":
        return data[el.start:head_end]
    close = data.index(b">", el.end_tag)  # an end tag has no attributes, so the first '>' ends it
    return data[el.start:close + 1]


def _attr_quote(uri: str) -> str:
    return uri.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def verbatim(parsed: Parsed, el: Element, context: dict[str, str]) -> str:
    """`el` as sent, decoded; namespace declarations it inherited from its ancestors are
    added to its start tag only where `context` (the bindings in force where the writer
    will put it back) would resolve a prefix differently, so its meaning never changes."""
    needed: dict[str, str] = {}
    for sub in el.iter():
        for pre in (sub.prefix, *sub.attr_prefixes):
            binding = sub.scope.get(pre)
            if binding is not None and binding[1] >= el.depth:
                continue  # declared inside the element itself
            needed[pre] = binding[0] if binding is not None else ""
    decls = []
    for pre, uri in sorted(needed.items()):
        if context.get(pre, "" if pre == "" else None) == uri:
            continue
        attr = "xmlns" if pre == "" else f"xmlns:{pre}"
        decls.append(f' {attr}="{_attr_quote(uri)}"')
    text = source_bytes(parsed, el).decode("utf-8")
    if decls:
        qname = f"{el.prefix}:{el.local}" if el.prefix else el.local
        cut = 1 + len(qname)
        text = text[:cut] + "".join(decls) + text[cut:]
    return text
