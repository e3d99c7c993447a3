"""Node configuration: one YAML file -> typed, frozen ``Settings``.

Why this shape: a node must refuse to start on a bad config, and the operator
must be told *which key* is wrong and *what it should be*. The schema is
declared once, as frozen pydantic dataclasses whose fields use the ``Annotated``
types below (host:port, durations, sizes, paths, agency codes); pydantic does
the unknown-key, required-key and type checking and the dumping, and
``_config_error`` turns its errors into the one ``ConfigError`` to fix first.

Pydantic *dataclasses* rather than ``BaseModel``: ``Settings`` stays a real
frozen dataclass, so assigning raises ``AttributeError``, ``dataclasses.replace``
works (and re-validates) and ``source`` stays out of equality and hashing.

Conventions (documented in docs/config.md):
- A key set to ``null`` counts as absent (its default applies; error if required).
- Unknown keys are errors at every level (catches typos).
- Relative paths resolve against the config file's directory.
- Errors: ``ConfigError`` with ``path`` (e.g. ``peers[2].address``) and
  ``expected``; ``str(err)`` is ``"<file>: <path>: <message>"``.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, NoReturn, get_args, get_origin

import yaml
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, PlainSerializer, TypeAdapter
from pydantic import ValidationError, ValidationInfo, model_serializer, model_validator
from pydantic.dataclasses import dataclass
from pydantic.fields import FieldInfo
from pydantic_core import ArgsKwargs, PydanticCustomError

from .codes import case_twin_of

__all__ = [
    "ConfigError", "Settings", "NodeSettings", "TlsSettings", "ApiSettings", "Peer", "RetrySettings",
    "MessageSettings", "RegistrySettings", "HostSettings", "LimitsSettings", "MetricsSettings", "FrozenMap", "load_config", "parse_config", "dump_config",
    "schema_keys", "KeyInfo", "is_agency_code", "LOG_LEVELS",
]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


# --------------------------------------------------------------------------- errors


class ConfigError(Exception):
    """A config problem that must stop start-up (the CLI exits with status 2).

    ``path`` is the key path ("peers[2].address"; "" for file-level problems),
    ``expected`` says what would have been accepted, ``file`` is the config
    file name when known and ``line`` the 1-based line for YAML syntax errors.
    """

    def __init__(self, message: str, path: str = "", expected: str = "", file: str | None = None,
                 line: int | None = None) -> None:
        # All args go to Exception so the error pickles/copies intact.
        super().__init__(message, path, expected, file, line)
        self.message = message
        self.path = path
        self.expected = expected
        self.file = file
        self.line = line
        self.more: tuple[ConfigError, ...] = ()  # further errors of the same file (pydantic finds them all)

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


def _fail(expected: str, got: Any, hint: str = "", *, key: tuple = (), message: str = "") -> NoReturn:
    """Reject a value from inside a validator; ``_config_error`` makes it a ConfigError.

    ``key``: a sub-path below where the validator runs (a model rule blaming
    one of its keys); ``{at}`` in ``expected``/``message`` becomes that place.
    """
    message = message or f"expected {expected}, got {_show(got)}" + (f" ({hint})" if hint else "")
    raise PydanticCustomError("config", "{message}", {"message": message, "expected": expected, "key": key})


# --------------------------------------------------------------------------- leaf types


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


Text = Annotated[str, Field(strict=True, pattern=r"\S", description="a non-empty string")]

NAME_LENGTH = 300  # characters of an agency name (the longest real ones are about 150); parents refuse longer


def _agency_name(v: str) -> str:
    """What the parent stores and hands to every lookup: bounded and printable (node/fields.py)."""
    if len(v) > NAME_LENGTH:
        _fail(f"a name of at most {NAME_LENGTH} characters", f"{v[:40]}…", f"{len(v)} characters")
    bad = next((ch for ch in v if not ch.isprintable()), None)
    if bad is not None:
        _fail("a name without control characters", v[:80], f"U+{ord(bad):04X}")
    return v


AgencyName = Annotated[str, Field(strict=True, pattern=r"\S", description="a non-empty string"),
                       AfterValidator(_agency_name)]
Bool = Annotated[bool, Field(strict=True, description="true or false")]

_CODE_RE = re.compile(r"[0-9A-Za-z]+(?:\.[0-9A-Za-z]+)*")
_CODE = 'an agency code like "000.00.01.H53" (1-35 characters of 0-9, A-Z, a-z, ".", no empty dot groups)'


def is_agency_code(code: str) -> bool:
    """Shape check for agency codes (QCVN 102-like and free-form ones such as
    "vxp.saas.03"): 1..35 chars of [0-9A-Za-z.], no empty dot groups.
    Deliberately loose; a stricter registry-aware check lives elsewhere."""
    return isinstance(code, str) and 1 <= len(code) <= 35 and _CODE_RE.fullmatch(code) is not None


def _code(v: Any) -> str:
    if not is_agency_code(v):
        _fail(_CODE, v)
    twin = case_twin_of(v)
    if twin is not None:
        _fail(_CODE, v, f"it differs from the QCVN 102 code {twin} only by letter case; codes are case-sensitive")
    return v


AgencyCode = Annotated[str, BeforeValidator(_code), Field(description=_CODE)]

_HOST_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME_RE = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?")
_HOST_PORT_RE = re.compile(r"\[([^\]]*)\]:([0-9]+)|([^:\[\]]*):([0-9]+)")


def _host_port(v: Any) -> str:
    """"host:port" where host is IPv4, a hostname or [IPv6]; port 0..65535 (0 = any free port)."""
    m = _HOST_PORT_RE.fullmatch(v) if isinstance(v, str) else None
    if not m:
        _fail("host:port", v)
    bracketed = m.group(1) is not None
    host, port = m.group(1, 2) if bracketed else m.group(3, 4)
    if not host:
        _fail("host:port", v, "empty host")
    if bracketed or re.fullmatch(r"[0-9.]+", host):
        ip = ipaddress.IPv6Address if bracketed else ipaddress.IPv4Address
        try:
            ip(host)
        except ValueError:
            _fail("host:port", v, f"bad {ip.__name__[:4]} address {host!r}")
    elif len(host) > 253 or not _HOSTNAME_RE.fullmatch(host):
        _fail("host:port", v, f"bad host {host!r}")
    if int(port) > 65535:
        _fail("host:port", v, "port must be 0..65535")
    return v


HostPort = Annotated[str, BeforeValidator(_host_port), Field(description="host:port")]

_LOOPBACK = "a loopback host:port (127.x.x.x, [::1] or localhost): the local API has no TLS"


def _loopback(v: str) -> str:
    """The local API speaks plain HTTP/2 with a bearer token: off this machine, anyone on the path reads it."""
    host = v.rsplit(":", 1)[0].strip("[]")
    if host.lower() != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            _fail(_LOOPBACK, v)
    return v


LoopbackHostPort = Annotated[str, BeforeValidator(_host_port), AfterValidator(_loopback), Field(description=_LOOPBACK)]

TOKEN_BITS = 256  # 32 bytes of entropy, e.g. `python -c "import secrets; print(secrets.token_urlsafe(32))"`


_URLSAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def token_bits(token: str) -> float:
    """A generous estimate of a token's entropy: its length times log2 of the alphabet it draws on
    (digits, lower, upper, others), or 0 for a token of fewer than 10 distinct characters. A token
    written in the URL-safe base64 alphabet counts all 64 of it: `secrets.token_urlsafe(32)` (what the
    docs and the harness use) has no digit or no '-'/'_' in about one draw in four, and judged by the
    classes it happened to show it was refused about once in 1,500 draws (a flaky suite, a confused admin)."""
    if len(set(token)) < 10:
        return 0.0
    pool = (10 * any(c.isdigit() for c in token) + 26 * any(c.islower() for c in token)
            + 26 * any(c.isupper() for c in token) + 32 * any(not c.isalnum() for c in token))
    if set(token) <= _URLSAFE:
        pool = max(pool, len(_URLSAFE))
    return len(token) * math.log2(pool)


# Plain numbers: pydantic's own checks; _config_error words its type errors.
BatchSize = Annotated[int, Field(strict=True, ge=1, le=1000, description="an integer 1..1000")]
SendWorkers = Annotated[int, Field(strict=True, ge=1, le=256, description="an integer 1..256")]
Multiplier = Annotated[float, Field(strict=True, ge=1, allow_inf_nan=False, description="a number >= 1")]
Factor = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False, description="a number > 0")]

_DURATION_UNITS = {"d": Decimal(86400), "h": Decimal(3600), "m": Decimal(60), "s": Decimal(1), "ms": Decimal("0.001")}
_DURATION_RE = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s|m|h|d)")
_DURATION = 'a duration such as "250ms", "1.5s", "10m", "7d" or a number of seconds'


def _duration_from_text(text: str) -> float | None:
    m = _DURATION_RE.fullmatch(text.strip())
    if not m:
        return None
    return float(Decimal(m.group(1)) * _DURATION_UNITS[m.group(2)])


def _duration_text(value: float) -> str | float:
    """Readable text ("10m", "250ms", "1.5s") when it parses back exactly; else plain seconds."""
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


def _duration(*, positive: bool) -> Any:
    """Seconds as a number, or "<number><unit>" with unit ms/s/m/h/d; stored as float seconds."""

    def check(v: Any) -> float:
        if _is_number(v) and math.isfinite(v):
            seconds = float(v)
        elif (seconds := _duration_from_text(v) if isinstance(v, str) else None) is None:
            _fail(_DURATION, v)
        if seconds < 0 or (positive and seconds == 0):
            _fail("a duration > 0" if positive else "a duration >= 0", v)
        return seconds

    expected = _DURATION + (" (> 0)" if positive else "")
    return Annotated[float, BeforeValidator(check), PlainSerializer(_duration_text), Field(description=expected)]


Duration = _duration(positive=False)
PositiveDuration = _duration(positive=True)

_SIZE_UNITS = {"GiB": 1 << 30, "GB": 10**9, "MiB": 1 << 20, "MB": 10**6, "KiB": 1 << 10, "KB": 10**3, "B": 1}
_SIZE_RE = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(B|KB|KiB|MB|MiB|GB|GiB)")
_SIZE = 'a size such as "512KiB", "16MiB", "1GB" or a number of bytes'


def _size(v: Any) -> int:
    """Bytes as an int, or "<number><unit>" (B, KB=1000, KiB=1024, MB, MiB, GB, GiB); > 0."""
    if isinstance(v, int) and not isinstance(v, bool):
        size = v
    elif isinstance(v, str) and (m := _SIZE_RE.fullmatch(v.strip())):
        exact = Decimal(m.group(1)) * _SIZE_UNITS[m.group(2)]
        if exact != exact.to_integral_value():
            _fail(_SIZE, v, "not a whole number of bytes")
        size = int(exact)
    else:
        _fail(_SIZE, v)
    if size <= 0:
        _fail("a size > 0", v)
    return size


def _size_text(value: int) -> str | int:
    for unit, factor in _SIZE_UNITS.items():
        if value and factor > 1 and value % factor == 0:
            return f"{value // factor}{unit}"
    return value


PositiveSize = Annotated[int, BeforeValidator(_size), PlainSerializer(_size_text), Field(description=_SIZE + " (> 0)")]


def _level(v: Any) -> str:
    """One of LOG_LEVELS, matched case-insensitively and stored upper-case."""
    if not isinstance(v, str) or v.upper() not in LOG_LEVELS:
        _fail("one of " + ", ".join(LOG_LEVELS), v)
    return v.upper()


LogLevel = Annotated[str, BeforeValidator(_level), Field(description="one of " + ", ".join(LOG_LEVELS))]


def _resolve(value: str | os.PathLike, info: ValidationInfo) -> Path:
    """Relative to the config file's directory (``base_dir`` in the validation context)."""
    base = (info.context or {}).get("base_dir") or os.getcwd()
    return Path(os.path.abspath(Path(base) / Path(value).expanduser()))


def _file(v: Any, info: ValidationInfo) -> Path:
    """A file that must exist now (keys, certificates, token files): failing
    at start-up beats failing on the first TLS handshake."""
    if not isinstance(v, (str, os.PathLike)) or not str(v):
        _fail("a file path", v)
    p = _resolve(v, info)
    if not p.exists():
        _fail("an existing file", str(v), f"not found: {p}")
    if not p.is_file():
        _fail("an existing file", str(v), f"not a regular file: {p}")
    if not os.access(p, os.R_OK):
        _fail("a readable file", str(v), f"permission denied: {p}")
    return p


def _dir(v: Any, info: ValidationInfo) -> Path:
    """A directory path; need not exist yet (the node creates it), but must not be a file."""
    if not isinstance(v, (str, os.PathLike)) or not str(v):
        _fail("a directory path", v)
    p = _resolve(v, info)
    if p.exists() and not p.is_dir():
        _fail("a directory path", str(v), f"exists and is not a directory: {p}")
    return p


def _maybe_file(v: Any, info: ValidationInfo) -> Path:
    """A file the node may create (sealing.key): need not exist yet, but must not be a directory."""
    if not isinstance(v, (str, os.PathLike)) or not str(v):
        _fail("a file path", v)
    p = _resolve(v, info)
    if p.exists() and not p.is_file():
        _fail("a file path", str(v), f"exists and is not a regular file: {p}")
    return p


SEAL_MODES = ("required", "preferred", "off")


def _seal_mode(v: Any) -> str:
    if not isinstance(v, str) or v.lower() not in SEAL_MODES:
        _fail("one of " + ", ".join(SEAL_MODES), v)
    return v.lower()


FilePath = Annotated[Path, BeforeValidator(_file), Field(description="an existing file")]
MaybeFilePath = Annotated[Path, BeforeValidator(_maybe_file), Field(description="a file path")]
SealMode = Annotated[str, BeforeValidator(_seal_mode), Field(description="one of " + ", ".join(SEAL_MODES))]
DirPath = Annotated[Path, BeforeValidator(_dir), Field(description="a directory path")]


def _yaml_list(v: Any, length: int | None = None) -> Any:
    """Only a list: pydantic would also turn a set into a tuple, in no set order,
    and would check the items of a list of the wrong length first."""
    if not isinstance(v, (list, tuple)) or length not in (None, len(v)):
        raise PydanticCustomError("list_type", "Input should be a valid list")
    return v


def _pair(v: Any) -> Any:
    return _yaml_list(v, 2)


def _one_or_more(v: Any, info: ValidationInfo) -> Any:
    """A lone path means a one-item list (checked here, so its error names the key, not [0])."""
    return (_file(v, info),) if isinstance(v, (str, os.PathLike)) else _yaml_list(v)


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


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True, kw_only=True, config=ConfigDict(extra="forbid"))
class _Section:
    """Base of every settings class (a YAML mapping with fixed keys)."""

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        """``key: null`` counts as absent; an absent section is validated as ``{}``
        so the first required key inside it gets named."""
        if not isinstance(data, Mapping):
            return data  # keyword arguments from code, or not a mapping: pydantic's turn
        data = {k: v for k, v in data.items() if v is not None or k not in _keys(cls)}
        for name, field in _keys(cls).items():
            sub, listed = _section(field)
            if sub is not None and not listed:
                data.setdefault(name, {})
        return data


def _given(data: Any) -> Mapping:
    """The keys a model validator was handed (a document mapping or keyword arguments)."""
    if isinstance(data, ArgsKwargs):
        return data.kwargs or {}
    return data if isinstance(data, Mapping) else {}


def _not_below(self: Any, data: Any, key: str, floor_key: str) -> None:
    """``key`` must be >= ``floor_key`` (both durations); blames ``key``, or its default."""
    floor = getattr(self, floor_key)
    if getattr(self, key) < floor:
        expected = f"a duration >= {{at}}.{floor_key} ({_fmt_num(floor)}s)"
        if _given(data).get(key) is not None:
            _fail(expected, _given(data)[key], key=(key,))
        _fail(expected, _duration_text(getattr(self, key)), "the default", key=(key,))


@dataclass(frozen=True, kw_only=True)
class NodeSettings(_Section):
    """Who this node is and where it keeps its state."""

    code: AgencyCode
    name: AgencyName
    data_dir: DirPath
    parent: AgencyCode | None = None
    root: Bool = False             # the top of its tree: registers nowhere, whatever the code rule says
    address: Text | None = None    # edXML From/OrganAdd, Email, Telephone of what this node sends
    email: Text | None = None
    phone: Text | None = None


@dataclass(frozen=True, kw_only=True)
class TlsSettings(_Section):
    """mTLS material for the node-to-node server and client."""

    cert: FilePath
    key: FilePath
    trust_anchors: Annotated[
        tuple[FilePath, ...],
        BeforeValidator(_one_or_more),
        Field(min_length=1, description="a non-empty list of existing files"),
    ]
    crl: FilePath | None = None
    crl_grace: Duration = 86400.0
    insecure_plaintext: Bool = False


def _resolve_token(self: Any, data: Any) -> bool:
    """Exactly one of `token` / `token_file`; the file read into `token`; a strong token. False when the
    settings were checked before (a dataclasses.replace() of loaded settings: the file was read then)."""
    token, token_file = _given(data).get("token"), _given(data).get("token_file")
    if isinstance(data, type(self)) or (isinstance(data, ArgsKwargs) and None not in (token, token_file)):
        return False
    if (token is None) == (token_file is None):
        _fail("exactly one of token, token_file", None,
              message=f"expected exactly one of token, token_file, got {'neither' if token is None else 'both'}")
    if self.token_file is not None:
        try:
            text = self.token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            _fail("a UTF-8 file containing the token", str(token_file), str(e), key=("token_file",))
        if not text:
            hint = f"file is empty: {self.token_file}"
            _fail("a file containing the token", str(token_file), hint, key=("token_file",))
        object.__setattr__(self, "token", text)  # still being validated: nobody holds it yet
    if token_bits(self.token) < TOKEN_BITS:
        where = "token_file" if self.token_file is not None else "token"
        _fail("a token of 32 random bytes or more", None, key=(where,),  # never echo the secret
              message=f"the token is too weak (about {token_bits(self.token):.0f} bits, need {TOKEN_BITS}):"
                      ' make one with `python -c "import secrets; print(secrets.token_urlsafe(32))"`')
    return True


API_SCOPES = ("read", "send", "admin")  # node.api.clients says which calls each covers
DEFAULT_CLIENT = "default"              # the client of api.token / api.token_file


def _scopes(v: Any) -> Any:
    v = _yaml_list(v)
    for i, scope in enumerate(v):
        if scope not in API_SCOPES:
            _fail("one of " + ", ".join(API_SCOPES), scope, key=(i,))
    if len(set(v)) != len(v):
        _fail("scopes listed once each", v)
    return tuple(v)


ClientName = Annotated[str, Field(strict=True, pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$",
                                  description='a name of 1-32 characters: a-z, 0-9, "-", "_" (not first)')]
Scopes = Annotated[tuple[str, ...], BeforeValidator(_scopes),
                   Field(min_length=1, description="a non-empty list of " + ", ".join(API_SCOPES))]


def _token_stays_in_its_file(self: Any, handler: Any) -> dict:
    """Serializer of a section with ``token``/``token_file``: a token read from a file is not written out."""
    out = handler(self)
    if self.token_file is not None:
        out.pop("token", None)
    return out


@dataclass(frozen=True, kw_only=True)
class ApiClient(_Section):
    """One client program of the local API: its name (in the audit log and its idempotency key space),
    its own token, and what it may call (node/api/clients.py)."""

    name: ClientName
    token: Text | None = Field(default=None, repr=False)
    token_file: FilePath | None = None
    scopes: Scopes = ("read", "send")

    @model_validator(mode="wrap")
    @classmethod
    def _one_token(cls, data: Any, handler: Any) -> ApiClient:
        self = handler(data)
        _resolve_token(self, data)
        return self

    _secret_stays_in_its_file = model_serializer(mode="wrap")(_token_stays_in_its_file)


def _distinct_clients(clients: tuple[ApiClient, ...]) -> tuple[ApiClient, ...]:
    seen: dict[str, int] = {}
    for i, c in enumerate(clients):
        if c.name == DEFAULT_CLIENT:
            _fail("a name other than default", c.name, key=(i, "name"),
                  message="expected a name other than \"default\" (the client of api.token / api.token_file)")
        if c.name in seen:
            _fail("a name not already listed", c.name, key=(i, "name"), message=f"duplicate of {{at}}[{seen[c.name]}]")
        seen[c.name] = i
    return clients


@dataclass(frozen=True, kw_only=True)
class ApiSettings(_Section):
    """Local API for the agency's own software. ``token`` is always the
    resolved secret (read from ``token_file`` when that is used): the client "default", with every
    scope. ``tokens``: one more client per program, each with its own token, name and scopes."""

    listen: LoopbackHostPort
    token: Text | None = Field(default=None, repr=False)
    token_file: FilePath | None = None
    http_listen: LoopbackHostPort | None = None  # the HTTP/JSON face of the same API; off unless set
    tokens: Annotated[
        tuple[ApiClient, ...],
        BeforeValidator(_yaml_list),
        AfterValidator(_distinct_clients),
        Field(description="a list of {name, token or token_file, scopes}"),
    ] = ()

    @model_validator(mode="wrap")
    @classmethod
    def _one_token(cls, data: Any, handler: Any) -> ApiSettings:
        self = handler(data)
        if _resolve_token(self, data):
            seen = {self.token: DEFAULT_CLIENT}
            for i, c in enumerate(self.tokens):
                if c.token in seen:  # a token names one client: never echo it
                    _fail("a token of its own", None, key=("tokens", i, "token_file" if c.token_file else "token"),
                          message=f"expected a token of its own, got the token of client {seen[c.token]!r}")
                seen[c.token] = c.name
        return self

    _secret_stays_in_its_file = model_serializer(mode="wrap")(_token_stays_in_its_file)


@dataclass(frozen=True, kw_only=True)
class Peer(_Section):
    """A directly reachable node."""

    code: AgencyCode
    address: HostPort


def _unique_codes(peers: tuple[Peer, ...]) -> tuple[Peer, ...]:
    seen: dict[str, int] = {}
    for i, p in enumerate(peers):
        if p.code in seen:
            _fail("a code not already listed", p.code, key=(i, "code"), message=f"duplicate of {{at}}[{seen[p.code]}]")
        seen[p.code] = i
    return peers


_JITTER = "two numbers [low, high] with 0 < low <= high"


@dataclass(frozen=True, kw_only=True)
class RetrySettings(_Section):
    """Exponential back-off for failed deliveries."""

    first_delay: Duration = 1.0
    multiplier: Multiplier = 2.0
    max_delay: Duration = 600.0
    jitter: Annotated[tuple[Factor, Factor], BeforeValidator(_pair), Field(description=_JITTER)] = (0.8, 1.4)

    @model_validator(mode="wrap")
    @classmethod
    def _ordered(cls, data: Any, handler: Any) -> RetrySettings:
        self = handler(data)
        _not_below(self, data, "max_delay", "first_delay")
        if self.jitter[0] > self.jitter[1]:
            _fail(_JITTER, _given(data).get("jitter", self.jitter), key=("jitter",))
        return self


@dataclass(frozen=True, kw_only=True)
class MessageSettings(_Section):
    """Limits on envelopes this node accepts and forwards."""

    lifetime: PositiveDuration = 7 * 86400.0
    max_size: PositiveSize = 16 << 20
    batch_size: BatchSize = 256  # measured: 64 → ~1,350, 128 → ~1,420, 256 → ~1,590 docs/s A→B
    send_workers: SendWorkers = 8  # node.exchange.send_pool.DEFAULT_WORKERS: threads shared by all next hops


@dataclass(frozen=True, kw_only=True)
class RegistrySettings(_Section):
    """The tiered registry: registering with the parent, heartbeats, lookup caching."""

    heartbeat: PositiveDuration = 10.0
    stale_after: PositiveDuration = 30.0
    cache_ttl: PositiveDuration = 300.0
    advertise: HostPort | None = None
    unhealthy_after: PositiveDuration = 300.0

    @model_validator(mode="wrap")
    @classmethod
    def _ordered(cls, data: Any, handler: Any) -> RegistrySettings:
        self = handler(data)
        _not_below(self, data, "stale_after", "heartbeat")
        _not_below(self, data, "unhealthy_after", "heartbeat")
        return self


@dataclass(frozen=True, kw_only=True)
class MetricsSettings(_Section):
    """A Prometheus endpoint (HTTP, no TLS, no token): off unless ``listen`` is set; loopback unless
    ``allow_remote`` says otherwise, as metrics name agencies and the sizes of their queues."""

    listen: HostPort | None = None
    allow_remote: Bool = False
    cache_for: Duration = 2.0  # scrapes within it are answered what the first made (node/metrics_server.py)

    @model_validator(mode="wrap")
    @classmethod
    def _loopback_unless_allowed(cls, data: Any, handler: Any) -> MetricsSettings:
        self = handler(data)
        if self.listen is not None and not self.allow_remote:
            host = self.listen.rsplit(":", 1)[0].strip("[]")
            try:
                loopback = host.lower() == "localhost" or ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                _fail("a loopback host:port, or metrics.allow_remote: true", self.listen, key=("listen",),
                      message=f"expected a loopback host:port (127.x.x.x, [::1], localhost), got {_show(self.listen)}:"
                              " metrics have no TLS and no token; set metrics.allow_remote: true to serve them"
                              " beyond this machine on purpose")
        return self


@dataclass(frozen=True, kw_only=True)
class AuditSettings(_Section):
    """The tamper-evident audit log (docs/audit.md): how often the chain head is signed and handed to the parent."""

    checkpoint_every: PositiveDuration = 300.0


@dataclass(frozen=True, kw_only=True)
class SealingSettings(_Section):
    """Payloads sealed for their recipient (docs/sealing.md, node/identity/sealing.py).

    ``required`` by default: nothing in clear (SEAL_KEY_MISSING for a recipient publishing no seal key).
    ``preferred`` seals whenever the recipient's signed record publishes a seal key and sends in clear
    only to a node whose signed record publishes none (older than sealing), never on a relay's word
    that there is no record (issue 18); ``off`` seals nothing (the benchmark's baseline). Received
    payloads are opened whatever the mode."""

    mode: SealMode = "required"
    key: MaybeFilePath | None = None  # None: seal.key next to tls.key
    # retired seal keys, kept to open what was sealed to them (mail in flight, our own sent copies), never published
    previous_keys: tuple[FilePath, ...] = ()


Count = Annotated[int, Field(strict=True, ge=1, le=1_000_000, description="an integer 1..1000000")]
Rate = Annotated[float, Field(gt=0, le=1_000_000, allow_inf_nan=False, description="a number > 0")]
# registry calls answered at once, of the peer server's 16 workers (node.runtime.PEER_WORKERS): the rest
# are kept for delivery whatever the registry is doing
RegistryShare = Annotated[int, Field(strict=True, ge=1, le=12, description="an integer 1..12")]


@dataclass(frozen=True, kw_only=True)
class LimitsSettings(_Section):
    """Every size a peer or a client controls (node.limits, where it is known as `Limits`): over a
    limit, a request is refused with OVER_LIMIT (or RATE_LIMITED) naming it. The defaults are safe;
    raise one only for a need."""

    recipients_per_send: Count = 500
    attachments_per_document: Count = 100
    attachment_name_length: Count = 255
    updates_per_document: Count = 100
    envelopes_per_batch: Count = 1000
    trace_length: Count = 16
    xml_depth: Count = 64
    xml_namespace_declarations: Count = 1000
    import_warnings: Count = 50
    lookups_per_second: Rate = 20.0
    lookup_burst: Count = 100
    registry_updates_per_second: Rate = 1.0
    registry_update_burst: Count = 10
    registry_calls_per_peer: Count = 2
    registry_share: RegistryShare = 6
    lookups_down_per_child: Count = 2
    stats_rows_per_heartbeat: Count = 5000
    odd_codes_per_heartbeat: Count = 1000
    entries_per_listing: Count = 5000
    marks_per_batch: Count = 4096
    signatures_per_second: Rate = 5000.0
    signature_burst: Count = 20000
    parked_per_origin: Count = 1000
    parked_bytes_per_origin: PositiveSize = 256 << 20
    park_for: PositiveDuration = 3 * 86400.0


@dataclass(frozen=True, kw_only=True)
class HostSettings(_Section):
    """What only a host serving several agencies has (docs/hosting.md)."""

    admin_token_file: FilePath | None = None  # the host admin: Admin (and the rest) on any agency it names


@dataclass(frozen=True, kw_only=True)
class Settings(_Section):
    """Everything a node needs, validated. ``source`` is the config file (None
    when built from a dict) and does not take part in equality."""

    node: NodeSettings
    listen: HostPort
    tls: TlsSettings
    api: ApiSettings
    peers: Annotated[
        tuple[Peer, ...],
        BeforeValidator(_yaml_list),
        AfterValidator(_unique_codes),
        Field(description="a list of {code, address}"),
    ] = ()
    retry: RetrySettings = RetrySettings()
    messages: MessageSettings = MessageSettings()
    registry: RegistrySettings = RegistrySettings()
    limits: LimitsSettings = LimitsSettings()
    metrics: MetricsSettings = MetricsSettings()
    audit: AuditSettings = AuditSettings()
    sealing: SealingSettings = SealingSettings()
    parents_of: Annotated[
        Mapping[AgencyCode, AgencyCode],
        AfterValidator(FrozenMap),
        PlainSerializer(dict),
        Field(description="a mapping of agency code to parent agency code"),
    ] = FrozenMap()
    log_level: LogLevel = "INFO"
    # a host serving several agencies (node/host/): more agency files, and a directory of them
    agencies: Annotated[
        tuple[FilePath, ...],
        BeforeValidator(_yaml_list),
        Field(description="a list of agency files (paths)"),
    ] = ()
    agencies_dir: DirPath | None = None
    host: HostSettings = HostSettings()
    # Not a key: set by load_config.
    source: Path | None = dataclasses.field(default=None, init=False, compare=False)

    @property
    def seal_key_path(self) -> Path:
        """sealing.key, or seal.key next to tls.key (where `lienthong init` writes it)."""
        return Path(self.sealing.key) if self.sealing.key else Path(self.tls.key).parent / "seal.key"

    def peer_address(self, code: str) -> str | None:
        """host:port of a directly configured peer, or None."""
        for p in self.peers:
            if p.code == code:
                return p.address
        return None


_SETTINGS = TypeAdapter(Settings)


# --------------------------------------------------------------------------- schema walking


@functools.cache
def _keys(cls: type) -> dict[str, FieldInfo]:
    """Config keys of a settings class, in declaration order."""
    return {name: f for name, f in cls.__pydantic_fields__.items() if f.init is not False}


def _section(field: FieldInfo) -> tuple[type | None, bool]:
    """The settings class a key holds, and whether as a list of them."""
    t = field.annotation
    listed = get_origin(t) is tuple
    if listed:
        t = get_args(t)[0]
    if isinstance(t, type) and issubclass(t, _Section):
        return t, listed
    return None, False


def _expected(field: FieldInfo) -> str:
    """What a key accepts, in words."""
    sub, listed = _section(field)
    if sub is not None and not listed:
        return _mapping(sub)
    # The words are on the key, or on X for a key of type X | None.
    return field.description or next(filter(None, map(_described, get_args(field.annotation))), "a value")


def _described(tp: Any) -> str | None:
    """The description of an Annotated type, if it has one."""
    return next((m.description for m in getattr(tp, "__metadata__", ()) if getattr(m, "description", None)), None)


def _mapping(cls: type) -> str:
    return "a mapping with keys " + ", ".join(_keys(cls))


def _locate(loc: tuple) -> tuple[str, tuple, str, type | None]:
    """Walk a pydantic error location through the schema. Returns the key path
    ("peers[2].address", 'parents_of["vxp.saas.03"]'); a rank that sorts errors
    the way the operator should meet them (an unknown key before the rest of
    its mapping, then keys in declaration order); what is expected there; and,
    for an unknown key, the section it is not part of."""
    path, rank, expected, field = "", [], "a value", None
    cls: type | None = Settings  # a section, expecting a key
    items: type | None = None  # a list of sections, expecting an index
    for part in loc:
        if cls is not None:
            keys = _keys(cls)
            path += f".{part}" if path else str(part)
            if part not in keys:
                return path, (*rank, -1), expected, cls
            field = keys[part]
            rank.append(list(keys).index(part))
            expected = _expected(field)
            sub, listed = _section(field)
            cls, items = (None, sub) if listed else (sub, None)
        elif isinstance(part, int) and items is not None:  # a list of sections
            path += f"[{part}]"
            rank.append(part)
            cls, items = items, None
            expected = _mapping(cls)
        elif isinstance(part, int):  # item of a list of values (pydantic lists them in order)
            path += f"[{part}]"
            expected = _described(get_args(field.annotation)[0]) or expected
        elif part != "[key]":  # entry of a free-form map
            path += f"[{_show(part)}]"
    return path, tuple(rank), expected, None


_TYPE_WORDS = {"int_type": "an integer", "float_type": "a number", "finite_number": "a number"}


def _config_error(exc: ValidationError, source: str) -> ConfigError:
    """The error of pydantic's list that the operator should fix first, as a ConfigError; the others, in
    the order to meet them, in its ``more`` (check-config reports them all in one run)."""
    located = []
    for e in exc.errors():
        key = (e.get("ctx") or {}).get("key", ()) if e["type"] == "config" else ()
        located.append((_locate(e["loc"] + tuple(key)), e))
    located.sort(key=lambda t: t[0][1])
    errors: list[ConfigError] = []
    for (path, _, expected, unknown_in), e in located:
        err = _one_error(path, expected, unknown_in, e, source)
        if all((err.path, err.message) != (x.path, x.message) for x in errors):
            errors.append(err)
    first, *rest = errors
    first.more = tuple(rest)
    return first


def _one_error(path: str, expected: str, unknown_in: type | None, e: Any, source: str) -> ConfigError:
    """One of pydantic's errors, located, as a ConfigError."""
    if unknown_in is not None:
        choices = ", ".join(_keys(unknown_in))
        return ConfigError(f"unknown key; expected one of: {choices}", path, f"one of: {choices}", source)
    if e["type"] == "config":  # ours: message and expected made by _fail
        at = _locate(e["loc"])[0]
        ctx = e["ctx"]
        return ConfigError(ctx["message"].replace("{at}", at), path, ctx["expected"].replace("{at}", at), source)
    if e["type"] == "missing":
        return ConfigError("required", path, expected, source)
    expected = _TYPE_WORDS.get(e["type"], expected)  # "a number", not "a number >= 1", for "fast"
    return ConfigError(f"expected {expected}, got {_show(e['input'])}", path, expected, source)


@dataclasses.dataclass(frozen=True)
class KeyInfo:
    """One leaf key of the schema, for docs and tooling."""

    path: str  # e.g. "retry.first_delay", "peers[].code"
    required: bool
    expected: str


def schema_keys(cls: type | None = None, prefix: str = "") -> list[KeyInfo]:
    """All leaf key paths of the config schema (sections are descended into)."""
    out: list[KeyInfo] = []
    for name, field in _keys(cls or Settings).items():
        sub, listed = _section(field)
        if sub is not None:
            out += schema_keys(sub, f"{prefix}{name}{'[]' if listed else ''}.")
        else:
            out.append(KeyInfo(prefix + name, field.is_required(), _expected(field)))
    return out


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
    data = read_document(path)
    abs_path = Path(os.path.abspath(path))
    return located(parse_config(data, abs_path.parent, source=os.fspath(path)), abs_path)


def read_document(path: str | os.PathLike) -> Any:
    """A config file's YAML document, not yet validated (a repeated key is an error). Raises ConfigError."""
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
    return data


def located(settings: Settings, source: Path | None) -> Settings:
    """`settings`, just made and held by no one yet, naming the file it came from: `source` is not a key (no YAML
    may set it), so it is set here, the one place that does, outside validation."""
    object.__setattr__(settings, "source", source)
    return settings


def parse_config(data: Any, base_dir: str | os.PathLike, source: str = "<config>") -> Settings:
    """Validate an already-parsed document; relative paths resolve against base_dir."""
    if not isinstance(data, Mapping):
        got = "an empty document" if data is None else _show(data)
        message = f"expected a mapping of settings at the top level, got {got}"
        raise ConfigError(message, "", "a mapping of settings", source)
    try:
        return _SETTINGS.validate_python(data, context={"base_dir": os.path.abspath(base_dir)})
    except ValidationError as e:
        raise _config_error(e, source) from None


def dump_config(settings: Settings) -> dict[str, Any]:
    """Plain, YAML-safe dict with absolute paths; ``parse_config`` of it gives
    back equal Settings. Omits null keys; keeps the API token in token_file
    when one is used."""
    return _SETTINGS.dump_python(settings, mode="json", exclude_none=True, exclude={"source"})
