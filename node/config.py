"""Node configuration: one YAML file -> typed, frozen ``Settings``.

Why this shape: a node must refuse to start on a bad config, and the operator
must be told *which key* is wrong and *what it should be*. So every setting is
declared once, as a dataclass field carrying a "kind" (parser + dumper +
expectation text) in its metadata; one generic walker (``_parse_section``)
does unknown-key, required-key and type checking for every section, and
``dump_config`` is its inverse. Adding a section = adding a dataclass whose
fields use ``_setting(...)`` and referencing it from ``Settings``.

Conventions (documented in docs/config.md):
- A key set to ``null`` counts as absent (its default applies; error if required).
- Unknown keys are errors at every level (catches typos).
- Relative paths resolve against the config file's directory.
- Errors: ``ConfigError`` with ``path`` (e.g. ``peers[2].address``) and
  ``expected``; ``str(err)`` is ``"<file>: <path>: <message>"``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NoReturn

import yaml

__all__ = [
    "ConfigError",
    "Settings",
    "NodeSettings",
    "TlsSettings",
    "ApiSettings",
    "Peer",
    "RetrySettings",
    "MessageSettings",
    "FrozenMap",
    "load_config",
    "parse_config",
    "dump_config",
    "schema_keys",
    "KeyInfo",
    "is_agency_code",
    "LOG_LEVELS",
]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


# --------------------------------------------------------------------------- errors


class ConfigError(Exception):
    """A config problem that must stop start-up (the CLI exits with status 2).

    ``path`` is the key path ("peers[2].address"; "" for file-level problems),
    ``expected`` says what would have been accepted, ``file`` is the config
    file name when known and ``line`` the 1-based line for YAML syntax errors.
    """

    def __init__(
        self,
        message: str,
        path: str = "",
        expected: str = "",
        file: str | None = None,
        line: int | None = None,
    ) -> None:
        # All args go to Exception so the error pickles/copies intact.
        super().__init__(message, path, expected, file, line)
        self.message = message
        self.path = path
        self.expected = expected
        self.file = file
        self.line = line

    def __str__(self) -> str:
        return ": ".join(p for p in (self.file, self.path, self.message) if p)


def _show(value: Any) -> str:
    """Render an offending value the way it looks in YAML, briefly."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 80 else text[:76] + '..."'
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)) and not value:
        return "an empty list"
    if isinstance(value, (dict, list, tuple)):
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = ""
        if text and len(text) <= 80:
            return text
        return "a mapping" if isinstance(value, dict) else f"a list of {len(value)} items"
    return f"{type(value).__name__} {value}"


class _At:
    """Where in the document we are: key path + resolution context."""

    __slots__ = ("path", "base_dir", "source")

    def __init__(self, path: str, base_dir: Path, source: str | None) -> None:
        self.path = path
        self.base_dir = base_dir
        self.source = source

    def key(self, name: str) -> _At:
        return _At(f"{self.path}.{name}" if self.path else name, self.base_dir, self.source)

    def index(self, i: int) -> _At:
        return _At(f"{self.path}[{i}]", self.base_dir, self.source)

    def entry(self, k: Any) -> _At:
        # Map keys may contain dots (agency codes), so quote them.
        return _At(f"{self.path}[{_show(k)}]", self.base_dir, self.source)

    def error(self, message: str, expected: str = "") -> NoReturn:
        raise ConfigError(message, self.path, expected, self.source)

    def fail(self, expected: str, got: Any, hint: str = "") -> NoReturn:
        msg = f"expected {expected}, got {_show(got)}"
        self.error(f"{msg} ({hint})" if hint else msg, expected)

    def resolve(self, value: str | os.PathLike) -> Path:
        p = Path(value).expanduser()
        return Path(os.path.abspath(self.base_dir / p))


# --------------------------------------------------------------------------- kinds
# A kind turns a raw YAML value into a typed value (or raises via ``at``) and
# back. ``expected`` is the text used for "required" errors and docs.


class _Kind:
    expected = "a value"

    def parse(self, value: Any, at: _At) -> Any:
        raise NotImplementedError

    def dump(self, value: Any) -> Any:
        return value


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


class _Str(_Kind):
    expected = "a non-empty string"

    def parse(self, value, at):
        if not isinstance(value, str) or not value.strip():
            at.fail(self.expected, value)
        return value


_CODE_RE = re.compile(r"[0-9A-Za-z]+(?:\.[0-9A-Za-z]+)*")


def is_agency_code(code: str) -> bool:
    """Shape check for agency codes (QCVN 102-like and free-form ones such as
    "vxp.saas.03"): 1..35 chars of [0-9A-Za-z.], no empty dot groups.
    Deliberately loose; a stricter registry-aware check lives elsewhere."""
    return isinstance(code, str) and 1 <= len(code) <= 35 and _CODE_RE.fullmatch(code) is not None


class _Code(_Kind):
    expected = 'an agency code like "000.00.01.H53" (1-35 characters of 0-9, A-Z, a-z, ".", no empty dot groups)'

    def parse(self, value, at):
        if not is_agency_code(value):
            at.fail(self.expected, value)
        return value


_HOST_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME_RE = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?")


class _HostPort(_Kind):
    """"host:port" where host is IPv4, a hostname or [IPv6]; port 0..65535 (0 = any free port)."""

    expected = "host:port"

    def parse(self, value, at):
        if not isinstance(value, str):
            at.fail(self.expected, value)
        m = re.fullmatch(r"\[([^\]]*)\]:([0-9]+)|([^:\[\]]*):([0-9]+)", value)
        if not m:
            at.fail(self.expected, value)
        host, port = (m.group(1), m.group(2)) if m.group(2) is not None else (m.group(3), m.group(4))
        if not host:
            at.fail(self.expected, value, "empty host")
        if m.group(1) is not None:
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                at.fail(self.expected, value, f"bad IPv6 address {host!r}")
        elif re.fullmatch(r"[0-9.]+", host):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                at.fail(self.expected, value, f"bad IPv4 address {host!r}")
        elif len(host) > 253 or not _HOSTNAME_RE.fullmatch(host):
            at.fail(self.expected, value, f"bad host {host!r}")
        if int(port) > 65535:
            at.fail(self.expected, value, "port must be 0..65535")
        return value


class _Bool(_Kind):
    expected = "true or false"

    def parse(self, value, at):
        if not isinstance(value, bool):
            at.fail(self.expected, value)
        return value


class _Int(_Kind):
    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi
        self.expected = f"an integer {lo}..{hi}"

    def parse(self, value, at):
        if not isinstance(value, int) or isinstance(value, bool):
            at.fail("an integer", value)
        if not self.lo <= value <= self.hi:
            at.fail(self.expected, value)
        return value


class _Number(_Kind):
    """Any finite int/float, stored as float. ``min`` inclusive, ``gt`` exclusive."""

    def __init__(self, *, min: float | None = None, gt: float | None = None) -> None:
        self.min, self.gt = min, gt
        self.expected = (
            f"a number >= {_fmt_num(min)}" if min is not None
            else f"a number > {_fmt_num(gt)}" if gt is not None
            else "a number"
        )

    def parse(self, value, at):
        if not _is_number(value) or not math.isfinite(value):
            at.fail("a number", value)
        if (self.min is not None and value < self.min) or (self.gt is not None and value <= self.gt):
            at.fail(self.expected, value)
        return float(value)


_DURATION_UNITS = {"d": Decimal(86400), "h": Decimal(3600), "m": Decimal(60), "s": Decimal(1), "ms": Decimal("0.001")}
_DURATION_RE = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s|m|h|d)")


def _duration_from_text(text: str) -> float | None:
    m = _DURATION_RE.fullmatch(text.strip())
    if not m:
        return None
    return float(Decimal(m.group(1)) * _DURATION_UNITS[m.group(2)])


class _Duration(_Kind):
    """Seconds as a number, or "<number><unit>" with unit ms/s/m/h/d; stored as float seconds."""

    TYPE = 'a duration such as "250ms", "1.5s", "10m", "7d" or a number of seconds'

    def __init__(self, *, positive: bool = False) -> None:
        self.positive = positive
        self.expected = self.TYPE + (" (> 0)" if positive else "")

    def parse(self, value, at):
        if _is_number(value) and math.isfinite(value):
            seconds = float(value)
        elif isinstance(value, str) and (parsed := _duration_from_text(value)) is not None:
            seconds = parsed
        else:
            at.fail(self.TYPE, value)
        if seconds < 0 or (self.positive and seconds == 0):
            at.fail("a duration > 0" if self.positive else "a duration >= 0", value)
        return seconds

    def dump(self, value):
        # Readable text ("10m", "250ms", "1.5s") when it parses back exactly; else plain seconds.
        exact = Decimal(repr(float(value)))
        whole = [u for u in ("d", "h", "m", "s") if exact and exact % _DURATION_UNITS[u] == 0]
        candidates = [f"{int(exact / _DURATION_UNITS[u])}{u}" for u in whole[:1]] if exact else ["0s"]
        if 0 < exact < 1 and exact % _DURATION_UNITS["ms"] == 0:
            candidates.append(f"{int(exact * 1000)}ms")
        candidates.append(f"{exact}s")
        for text in candidates:
            if _duration_from_text(text) == value:
                return text
        return float(value)


_SIZE_UNITS = {"GiB": 1 << 30, "GB": 10**9, "MiB": 1 << 20, "MB": 10**6, "KiB": 1 << 10, "KB": 10**3, "B": 1}
_SIZE_RE = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(B|KB|KiB|MB|MiB|GB|GiB)")


class _Size(_Kind):
    """Bytes as an int, or "<number><unit>" (B, KB=1000, KiB=1024, MB, MiB, GB, GiB); stored as int bytes."""

    TYPE = 'a size such as "512KiB", "16MiB", "1GB" or a number of bytes'

    def __init__(self, *, positive: bool = False) -> None:
        self.positive = positive
        self.expected = self.TYPE + (" (> 0)" if positive else "")

    def parse(self, value, at):
        size: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            size = value
        elif isinstance(value, str) and (m := _SIZE_RE.fullmatch(value.strip())):
            try:
                exact = Decimal(m.group(1)) * _SIZE_UNITS[m.group(2)]
            except InvalidOperation:  # pragma: no cover - regex guarantees digits
                exact = Decimal("NaN")
            if exact == exact.to_integral_value():
                size = int(exact)
            else:
                at.fail(self.TYPE, value, "not a whole number of bytes")
        if size is None:
            at.fail(self.TYPE, value)
        if size < 0 or (self.positive and size == 0):
            at.fail("a size > 0" if self.positive else "a size >= 0", value)
        return size

    def dump(self, value):
        for unit, factor in _SIZE_UNITS.items():
            if value and factor > 1 and value % factor == 0:
                return f"{value // factor}{unit}"
        return value


class _Choice(_Kind):
    """One of fixed words; matched case-insensitively and stored upper-case."""

    def __init__(self, choices: tuple[str, ...]) -> None:
        self.choices = choices
        self.expected = "one of " + ", ".join(choices)

    def parse(self, value, at):
        if not isinstance(value, str) or value.upper() not in self.choices:
            at.fail(self.expected, value)
        return value.upper()


class _FilePath(_Kind):
    """A file that must exist now (keys, certificates, token files): failing
    at start-up beats failing on the first TLS handshake."""

    expected = "an existing file"

    def parse(self, value, at):
        if not isinstance(value, (str, os.PathLike)) or not str(value):
            at.fail("a file path", value)
        p = at.resolve(value)
        if not p.exists():
            at.fail(self.expected, str(value), f"not found: {p}")
        if not p.is_file():
            at.fail(self.expected, str(value), f"not a regular file: {p}")
        if not os.access(p, os.R_OK):
            at.fail("a readable file", str(value), f"permission denied: {p}")
        return p

    def dump(self, value):
        return str(value)


class _DirPath(_Kind):
    """A directory path; need not exist yet (the node creates it), but must not be a file."""

    expected = "a directory path"

    def parse(self, value, at):
        if not isinstance(value, (str, os.PathLike)) or not str(value):
            at.fail(self.expected, value)
        p = at.resolve(value)
        if p.exists() and not p.is_dir():
            at.fail(self.expected, str(value), f"exists and is not a directory: {p}")
        return p

    def dump(self, value):
        return str(value)


class _ListOf(_Kind):
    """A YAML list -> tuple. ``single_ok``: a lone scalar means a one-item list.
    ``unique``: attribute of items that must not repeat (reported on the later item)."""

    def __init__(
        self,
        item: _Kind,
        *,
        min_len: int = 0,
        length: int | None = None,
        single_ok: bool = False,
        unique: str | None = None,
        expected: str | None = None,
    ) -> None:
        self.item, self.min_len, self.length = item, min_len, length
        self.single_ok, self.unique = single_ok, unique
        self.expected = expected or f"a {'non-empty ' if min_len else ''}list"

    def parse(self, value, at):
        if self.single_ok and isinstance(value, (str, os.PathLike)):
            return (self.item.parse(value, at),)
        if not isinstance(value, (list, tuple)):
            at.fail(self.expected, value)
        if len(value) < self.min_len or (self.length is not None and len(value) != self.length):
            at.fail(self.expected, value)
        items = tuple(self.item.parse(v, at.index(i)) for i, v in enumerate(value))
        if self.unique:
            seen: dict[Any, int] = {}
            for i, it in enumerate(items):
                k = getattr(it, self.unique)
                if k in seen:
                    at.index(i).key(self.unique).error(
                        f"duplicate of {at.index(seen[k]).path}", f"a {self.unique} not already listed"
                    )
                seen[k] = i
        return items

    def dump(self, value):
        return [self.item.dump(v) for v in value]


class FrozenMap(Mapping):
    """Immutable, hashable mapping, so ``Settings`` stays frozen and hashable."""

    __slots__ = ("_d",)

    def __init__(self, data: Mapping | Iterator | tuple = ()) -> None:
        self._d = dict(data)

    def __getitem__(self, key):
        return self._d[key]

    def __iter__(self):
        return iter(self._d)

    def __len__(self):
        return len(self._d)

    def __hash__(self):
        return hash(frozenset(self._d.items()))

    def __repr__(self):
        return f"FrozenMap({self._d!r})"


class _MapOf(_Kind):
    def __init__(self, key: _Kind, value: _Kind, expected: str = "a mapping") -> None:
        self.key, self.value, self.expected = key, value, expected

    def parse(self, value, at):
        if not isinstance(value, Mapping):
            at.fail(self.expected, value)
        out = {}
        for k, v in value.items():
            sub = at.entry(k)
            out[self.key.parse(k, sub)] = self.value.parse(v, sub)
        return FrozenMap(out)

    def dump(self, value):
        return {self.key.dump(k): self.value.dump(v) for k, v in value.items()}


class _Section(_Kind):
    """A nested settings dataclass (a YAML mapping with fixed keys)."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.expected = "a mapping with keys " + ", ".join(_specs(cls))

    def parse(self, value, at):
        return _parse_section(self.cls, value, at)

    def dump(self, value):
        return _dump_section(value)


# --------------------------------------------------------------------------- declarative core

_META = "lienthong.config"
_REQUIRED = object()


@dataclass(frozen=True)
class _Spec:
    kind: _Kind
    required: bool


def _setting(kind: _Kind, default: Any = _REQUIRED, **field_kw: Any) -> Any:
    """Declare a config key: its kind and default (omit default = required)."""
    meta = {_META: _Spec(kind, default is _REQUIRED)}
    if default is _REQUIRED:
        return field(metadata=meta, **field_kw)
    return field(default=default, metadata=meta, **field_kw)


def _specs(cls: type) -> dict[str, _Spec]:
    """Config keys of a settings dataclass, in declaration order."""
    return {f.name: f.metadata[_META] for f in dataclasses.fields(cls) if _META in f.metadata}


def _parse_section(cls: type, value: Any, at: _At) -> Any:
    """Generic validation of one mapping against a settings dataclass.

    Unknown keys are checked first so a typo is reported as a typo rather than
    as the "required" key it was meant to be.
    """
    if value is None:
        value = {}
    specs = _specs(cls)
    if not isinstance(value, Mapping):
        at.fail("a mapping with keys " + ", ".join(specs), value)
    for k in value:
        if not isinstance(k, str) or k not in specs:
            choices = ", ".join(specs)
            at.key(str(k)).error(f"unknown key; expected one of: {choices}", f"one of: {choices}")
    values: dict[str, Any] = {}
    for name, spec in specs.items():
        sub = at.key(name)
        raw = value.get(name)
        if raw is None and isinstance(spec.kind, _Section):
            raw = {}  # absent section: descend so the missing leaf gets named
        if raw is None:
            if spec.required:
                sub.error("required", spec.kind.expected)
            continue  # dataclass default applies
        values[name] = spec.kind.parse(raw, sub)
    hook = getattr(cls, "_after_parse", None)
    if hook is not None:
        values = hook(values, value, at)
    return cls(**values)


def _dump_section(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in _specs(type(obj)).items():
        v = getattr(obj, name)
        if v is not None:
            out[name] = spec.kind.dump(v)
    hook = getattr(obj, "_before_dump", None)
    return hook(out) if hook is not None else out


@dataclass(frozen=True)
class KeyInfo:
    """One leaf key of the schema, for docs and tooling."""

    path: str  # e.g. "retry.first_delay", "peers[].code"
    required: bool
    expected: str


def schema_keys(cls: type | None = None, prefix: str = "") -> list[KeyInfo]:
    """All leaf key paths of the config schema (sections are descended into)."""
    out: list[KeyInfo] = []
    for name, spec in _specs(cls or Settings).items():
        kind = spec.kind
        if isinstance(kind, _Section):
            out += schema_keys(kind.cls, f"{prefix}{name}.")
        elif isinstance(kind, _ListOf) and isinstance(kind.item, _Section):
            out += schema_keys(kind.item.cls, f"{prefix}{name}[].")
        else:
            out.append(KeyInfo(prefix + name, spec.required, kind.expected))
    return out


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True, kw_only=True)
class NodeSettings:
    """Who this node is and where it keeps its state."""

    code: str = _setting(_Code())
    name: str = _setting(_Str())
    data_dir: Path = _setting(_DirPath())
    parent: str | None = _setting(_Code(), default=None)


@dataclass(frozen=True, kw_only=True)
class TlsSettings:
    """mTLS material for the node-to-node server and client."""

    cert: Path = _setting(_FilePath())
    key: Path = _setting(_FilePath())
    trust_anchors: tuple[Path, ...] = _setting(
        _ListOf(_FilePath(), min_len=1, single_ok=True, expected="a non-empty list of existing files")
    )
    insecure_plaintext: bool = _setting(_Bool(), default=False)


@dataclass(frozen=True, kw_only=True)
class ApiSettings:
    """Local API for the agency's own software. ``token`` is always the
    resolved secret (read from ``token_file`` when that is used)."""

    listen: str = _setting(_HostPort())
    token: str | None = _setting(_Str(), default=None, repr=False)
    token_file: Path | None = _setting(_FilePath(), default=None)

    @classmethod
    def _after_parse(cls, values: dict, raw: Mapping, at: _At) -> dict:
        token, token_file = values.get("token"), values.get("token_file")
        if (token is None) == (token_file is None):
            at.error(
                f"expected exactly one of token, token_file, got {'both' if token else 'neither'}",
                "exactly one of token, token_file",
            )
        if token_file is not None:
            sub = at.key("token_file")
            try:
                text = token_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as e:
                sub.fail("a UTF-8 file containing the token", str(raw.get("token_file")), str(e))
            if not text:
                sub.fail("a file containing the token", str(raw.get("token_file")), f"file is empty: {token_file}")
            values["token"] = text
        return values

    def _before_dump(self, out: dict) -> dict:
        if self.token_file is not None:
            out.pop("token", None)  # keep the secret in its file
        return out


@dataclass(frozen=True, kw_only=True)
class Peer:
    """A directly reachable node."""

    code: str = _setting(_Code())
    address: str = _setting(_HostPort())


@dataclass(frozen=True, kw_only=True)
class RetrySettings:
    """Exponential back-off for failed deliveries."""

    first_delay: float = _setting(_Duration(), default=1.0)
    multiplier: float = _setting(_Number(min=1), default=2.0)
    max_delay: float = _setting(_Duration(), default=600.0)
    jitter: tuple[float, float] = _setting(
        _ListOf(_Number(gt=0), length=2, expected="two numbers [low, high] with 0 < low <= high"),
        default=(0.8, 1.4),
    )

    @classmethod
    def _after_parse(cls, values: dict, raw: Mapping, at: _At) -> dict:
        first = values.get("first_delay", cls.first_delay)
        if values.get("max_delay", cls.max_delay) < first:
            sub = at.key("max_delay")
            expected = f"a duration >= {at.key('first_delay').path} ({_fmt_num(first)}s)"
            if "max_delay" in values:
                sub.fail(expected, raw["max_delay"])
            sub.fail(expected, _Duration().dump(cls.max_delay), "the default")
        low, high = values.get("jitter", cls.jitter)
        if low > high:
            at.key("jitter").fail("two numbers [low, high] with 0 < low <= high", raw.get("jitter"))
        return values


@dataclass(frozen=True, kw_only=True)
class MessageSettings:
    """Limits on envelopes this node accepts and forwards."""

    lifetime: float = _setting(_Duration(positive=True), default=7 * 86400.0)
    max_size: int = _setting(_Size(positive=True), default=16 << 20)
    batch_size: int = _setting(_Int(1, 1000), default=256)  # measured: 64 → ~1,350, 128 → ~1,420, 256 → ~1,590 docs/s A→B


@dataclass(frozen=True, kw_only=True)
class RegistrySettings:
    """The tiered registry: registering with the parent, heartbeats, lookup caching."""

    heartbeat: float = _setting(_Duration(positive=True), default=10.0)
    stale_after: float = _setting(_Duration(positive=True), default=30.0)
    cache_ttl: float = _setting(_Duration(positive=True), default=300.0)
    advertise: str | None = _setting(_HostPort(), default=None)

    @classmethod
    def _after_parse(cls, values: dict, raw: Mapping, at: _At) -> dict:
        beat = values.get("heartbeat", cls.heartbeat)
        if values.get("stale_after", cls.stale_after) < beat:
            sub = at.key("stale_after")
            expected = f"a duration >= {at.key('heartbeat').path} ({_fmt_num(beat)}s)"
            if "stale_after" in values:
                sub.fail(expected, raw["stale_after"])
            sub.fail(expected, _Duration().dump(cls.stale_after), "the default")
        return values


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything a node needs, validated. ``source`` is the config file (None
    when built from a dict) and does not take part in equality."""

    node: NodeSettings = _setting(_Section(NodeSettings))
    listen: str = _setting(_HostPort())
    tls: TlsSettings = _setting(_Section(TlsSettings))
    api: ApiSettings = _setting(_Section(ApiSettings))
    peers: tuple[Peer, ...] = _setting(_ListOf(_Section(Peer), unique="code", expected="a list of {code, address}"), default=())
    retry: RetrySettings = _setting(_Section(RetrySettings), default=RetrySettings())
    messages: MessageSettings = _setting(_Section(MessageSettings), default=MessageSettings())
    registry: RegistrySettings = _setting(_Section(RegistrySettings), default=RegistrySettings())
    parents_of: Mapping[str, str] = _setting(
        _MapOf(_Code(), _Code(), expected="a mapping of agency code to parent agency code"), default=FrozenMap()
    )
    log_level: str = _setting(_Choice(LOG_LEVELS), default="INFO")
    source: Path | None = field(default=None, compare=False)

    def peer_address(self, code: str) -> str | None:
        """host:port of a directly configured peer, or None."""
        for p in self.peers:
            if p.code == code:
                return p.address
        return None


# --------------------------------------------------------------------------- entry points


class _StrictLoader(yaml.SafeLoader):
    """safe_load semantics, but a key repeated in one mapping is an error:
    silently keeping the last ``tls:`` block is how configs go wrong."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: set = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"found duplicate key {_show(key)}", key_node.start_mark,
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_error(err: yaml.YAMLError, file: str) -> ConfigError:
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        what = err.problem or err.context or "syntax error"
        if err.problem and err.context:
            what += f" ({err.context})"
        if mark is not None:
            line = mark.line + 1
            return ConfigError(
                f"line {line}, column {mark.column + 1}: invalid YAML: {what}", "", "valid YAML", file, line
            )
        return ConfigError(f"invalid YAML: {what}", "", "valid YAML", file)
    return ConfigError(f"invalid YAML: {err}", "", "valid YAML", file)


def load_config(path: str | os.PathLike) -> Settings:
    """Read, parse and validate a node config file. Raises ConfigError."""
    name = os.fspath(path)
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError("config file not found", "", "an existing YAML file", name) from None
    except OSError as e:
        raise ConfigError(f"cannot read config file: {e.strerror or e}", "", "a readable YAML file", name) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"not UTF-8 text (bad byte at offset {e.start})", "", "a UTF-8 YAML file", name) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as e:
        raise _yaml_error(e, name) from None
    abs_path = Path(os.path.abspath(p))
    settings = parse_config(data, abs_path.parent, source=name)
    return dataclasses.replace(settings, source=abs_path)


def parse_config(data: Any, base_dir: str | os.PathLike, source: str = "<config>") -> Settings:
    """Validate an already-parsed document; relative paths resolve against base_dir."""
    at = _At("", Path(os.path.abspath(base_dir)), source)
    if not isinstance(data, Mapping):
        got = "an empty document" if data is None else _show(data)
        at.error(f"expected a mapping of settings at the top level, got {got}", "a mapping of settings")
    return _parse_section(Settings, data, at)


def dump_config(settings: Settings) -> dict[str, Any]:
    """Plain, YAML-safe dict with absolute paths; ``parse_config`` of it gives
    back equal Settings. Omits null keys; keeps the API token in token_file
    when one is used."""
    return _dump_section(settings)
