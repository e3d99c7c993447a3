"""A host's config: the host file (process-wide keys) and one file per agency (its identity only).

Today's one-agency `node.yaml` is a host with one agency and loads as before. A host file that names
`agencies` (each a file, or an agency's keys inline: read exactly as a file, its errors named
`agencies[i].KEY` in the host file) or `agencies_dir` (every `*.yaml` in it) serves those too; it may
also hold an agency of its own (`node`, ...) or none. Each agency's full `Settings` is the host file deep-merged
with its agency file, so everything below reads `Settings` as it always did; an agency file may set
only the keys of AGENCY_KEYS (a process-wide key there is an error naming the file and key, since the
host could not honour it for one agency). Relative paths resolve against the file that names them.
"""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..config import ConfigError, Settings, load_config, located, parse_config, read_document

HOST_ONLY = ("agencies", "agencies_dir", "host")
# what an agency file may set: its identity, tokens, where its parent and peers are, its audit rhythm
AGENCY_SECTIONS = ("node", "sealing", "peers", "parents_of", "audit")
AGENCY_SUBKEYS = {"tls": ("cert", "key"), "api": ("token", "token_file", "tokens"), "registry": ("advertise",)}
MAX_AGENCIES = 5000  # per host: a province has at most a few hundred communes
MIN_ADMIN_TOKEN = 32  # characters of the host admin token


@dataclass(frozen=True)
class HostConfig:
    source: Path | None
    agencies: tuple[Settings, ...]  # each agency's full settings, in the order they were named
    files: dict[str, str] = field(default_factory=dict)  # code -> the file it came from
    admin_token: str | None = None  # host.admin_token_file's token
    several: bool = False  # the host file names agencies (or a directory of them)
    advertise: str | None = None  # the host file's registry.advertise: every agency's endpoint by default
    # an agency given inline in the host file: code -> (its prefix "agencies[i].", the key paths its entry sets)
    inline: dict[str, tuple[str, frozenset[str]]] = field(default_factory=dict)

    def key_name(self, code: str, key: str) -> str:
        """How `key` of agency `code`'s settings is found in the file it is written in: `agencies[i].KEY` when
        that agency's inline entry sets it (an operator reading `node.data_dir` would look for it at the top
        of the host file, where another agency's, or none, is), else KEY (its own file, or the host file's
        common part)."""
        prefix, owned = self.inline.get(code, ("", frozenset()))
        if not prefix:
            return key
        parts = re.sub(r"\[\d+\]", "", key).split(".")
        owns = any(".".join(parts[:n]) in owned for n in range(1, len(parts) + 1))
        return prefix + key if owns else key

    @property
    def process(self) -> Settings:
        """The process-wide keys (listen, api.listen, limits, ...): the same in every agency's settings."""
        return self.agencies[0]

    def agency(self, code: str | None) -> Settings:
        """One agency's settings (the only one when `code` is None); ConfigError naming the choices."""
        if code is None and len(self.agencies) == 1:
            return self.agencies[0]
        for s in self.agencies:
            if s.node.code == code:
                return s
        codes = ", ".join(s.node.code for s in self.agencies)
        what = "name one with --agency" if code is None else f"no agency {code} here"
        raise ConfigError(f"this host serves {len(self.agencies)} agencies ({codes}): {what}", "--agency",
                          "one of the host's agency codes", str(self.source) if self.source else None)


def settings_for(path: str | os.PathLike, agency: str | None = None) -> Settings:
    """The settings a CLI command uses: the config's one agency, or `agency` (--agency) of a host's."""
    if agency is None:
        raw = read_document(path)
        if not isinstance(raw, Mapping) or not any(raw.get(k) for k in HOST_ONLY):
            return load_config(path)
    return load_host(path).agency(agency)


def load_host(path: str | os.PathLike) -> HostConfig:
    """Read the host file and every agency file it names; ConfigError for the first problem."""
    raw = read_document(path)
    host_file = Path(os.path.abspath(path))
    if not isinstance(raw, Mapping) or not any(raw.get(k) for k in HOST_ONLY):
        s = load_config(path)  # today's node.yaml: one agency
        return HostConfig(s.source, (s,), {s.node.code: str(path)})
    base = host_file.parent
    host_raw = _absolute(dict(raw), base)
    agencies: list[Settings] = []
    files: dict[str, str] = {}
    if raw.get("node") is not None:  # the host file is an agency of its own too
        own = load_config(path)
        agencies.append(own)
        files[own.node.code] = str(path)
    common = _common(host_raw)
    prefixes: dict[str, str] = {}  # code -> "agencies[i]." for an agency given inline in the host file
    inline: dict[str, tuple[str, frozenset[str]]] = {}
    for entry in _agency_entries(raw, base, str(path)):
        s = _agency(entry, common, str(path))
        if entry.prefix:
            inline[s.node.code] = (entry.prefix, frozenset(_set_by(entry.raw)))
        if s.node.code in files:
            raise ConfigError(f"agency {s.node.code} is also in {files[s.node.code]}", entry.prefix + "node.code",
                              "one entry per agency code", entry.file)
        agencies.append(s)
        files[s.node.code] = entry.file
        prefixes[s.node.code] = entry.prefix
    if not agencies:
        raise ConfigError("no agency: name agency files in agencies or agencies_dir (or give node.*)",
                          "agencies", "at least one agency", str(path))
    _distinct(agencies, files, prefixes)
    admin = _admin_token(raw.get("host"), base, str(path))
    registry = raw.get("registry")
    advertise = registry.get("advertise") if isinstance(registry, Mapping) else None
    return HostConfig(host_file, tuple(agencies), files, admin, several=True,
                      advertise=advertise if isinstance(advertise, str) and advertise else None, inline=inline)


def _set_by(raw: Mapping, at: str = "") -> Iterator[str]:
    """The key paths a mapping sets: each leaf, and each list whole (what is under it is the entry's too)."""
    for key, value in raw.items():
        path = f"{at}{key}"
        if isinstance(value, Mapping):
            yield from _set_by(value, path + ".")
        else:
            yield path


def _common(host_raw: Mapping) -> dict:
    """What every agency takes from the host file: its process-wide keys (an agency's own keys dropped)."""
    common = {k: v for k, v in host_raw.items() if k not in HOST_ONLY and k not in AGENCY_SECTIONS}
    for sub, keys in AGENCY_SUBKEYS.items():
        if sub != "registry" and isinstance(common.get(sub), Mapping):  # registry.advertise: a default for all
            common[sub] = {k: v for k, v in common[sub].items() if k not in keys}
    return common


def agency_from_file(path: str | os.PathLike, agency_file: str | os.PathLike) -> Settings:
    """The settings of an agency whose file is not served now (set aside: `restore --agency-file`), merged over
    the host file `path` exactly as the host would merge it."""
    raw = read_document(path)
    if not isinstance(raw, Mapping) or not any(raw.get(k) for k in HOST_ONLY):
        raise ConfigError("not a host file: --agency-file needs the host file as --config", "--agency-file",
                          "a host file (with agencies or agencies_dir)", str(path))
    host_file = Path(os.path.abspath(path))
    return _agency(_file_entry(Path(os.path.abspath(agency_file))), _common(_absolute(dict(raw), host_file.parent)),
                   str(path))


@dataclass(frozen=True)
class _Entry:
    """One agency as the host file names it: a file of its own, or a mapping inline in `agencies:`."""
    file: str     # where it is written (an inline entry: the host file)
    raw: Any      # its settings as read
    base: Path    # what its relative paths are relative to
    prefix: str   # its key paths' prefix in `file`: "" for a file of its own, "agencies[i]." inline


def _agency_entries(raw: Mapping, base: Path, host_file: str) -> list[_Entry]:
    """`agencies` (each a file path or an inline mapping), then every `*.yaml` of `agencies_dir`."""
    listed = raw.get("agencies") or []
    if not isinstance(listed, list):
        raise ConfigError("expected a list of agency file paths or agency mappings", "agencies",
                          "a list of file paths or mappings", host_file)
    if len(listed) > MAX_AGENCIES:
        raise ConfigError(f"{len(listed)} agencies, at most {MAX_AGENCIES} per host", "agencies",
                          f"at most {MAX_AGENCIES} agencies", host_file)
    named: list[Path | _Entry] = []  # in the order they are named: files read once all are counted
    for i, x in enumerate(listed):
        if isinstance(x, Mapping):
            named.append(_Entry(host_file, x, base, f"agencies[{i}]."))
        elif isinstance(x, str) and x:
            named.append(Path(x) if os.path.isabs(x) else base / x)
        else:
            raise ConfigError("expected an agency file path or a mapping of agency settings", f"agencies[{i}]",
                              "a file path or a mapping (node, tls.cert, tls.key, ...)", host_file)
    folder = raw.get("agencies_dir")
    if folder is not None:
        if not isinstance(folder, str) or not folder:
            raise ConfigError("expected a directory path", "agencies_dir", "a directory path", host_file)
        d = Path(folder) if os.path.isabs(folder) else base / folder
        if not d.is_dir():
            raise ConfigError(f"not a directory: {d}", "agencies_dir", "an existing directory", host_file)
        named += sorted(p for p in d.glob("*.yaml") if p.is_file())
    if len(named) > MAX_AGENCIES:
        raise ConfigError(f"{len(named)} agencies, at most {MAX_AGENCIES} per host", "agencies",
                          f"at most {MAX_AGENCIES} agencies", host_file)
    return [x if isinstance(x, _Entry) else _file_entry(x) for x in named]


def _file_entry(file: Path) -> _Entry:
    return _Entry(str(file), read_document(file), file.parent, "")


def _agency(entry: _Entry, common: dict, host_file: str) -> Settings:
    raw, file = entry.raw, entry.file
    if not isinstance(raw, Mapping):
        raise ConfigError("expected a mapping of agency settings", entry.prefix.rstrip("."), "a mapping", file)
    for key, value in raw.items():
        if key in AGENCY_SECTIONS:
            continue
        allowed = AGENCY_SUBKEYS.get(key)
        if allowed is not None and isinstance(value, Mapping):
            for sub in value:
                if sub not in allowed:
                    raise _process_wide(f"{entry.prefix}{key}.{sub}", file, host_file)
            continue
        raise _process_wide(f"{entry.prefix}{key}", file, host_file)
    merged = _merge(common, _absolute(dict(raw), entry.base))
    try:
        s = parse_config(merged, entry.base, source=file)
    except ConfigError as e:  # a process-wide key that is wrong is the host file's
        top = e.path.split(".")[0].split("[")[0]
        if top not in AGENCY_SECTIONS and e.path not in {f"{k}.{x}" for k, v in AGENCY_SUBKEYS.items() for x in v}:
            e.file = host_file
        else:  # the agency's own key: where it is written
            for one in (e, *e.more):
                one.path = entry.prefix + one.path
        raise
    return located(s, Path(file))


def _process_wide(key: str, file: str, host_file: str) -> ConfigError:
    where = "an agency's entry" if file == host_file else "an agency file"
    return ConfigError(f"a process-wide key: set it in the host file {host_file}, not in {where}", key,
                       "only node, tls.cert, tls.key, sealing, api.token/token_file/tokens, registry.advertise, "
                       "peers, parents_of, audit", file)


def _merge(base: Mapping, over: Mapping) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


_PATHS = {("tls", "cert"), ("tls", "key"), ("tls", "crl"), ("node", "data_dir"), ("api", "token_file"),
          ("sealing", "key"), ("host", "admin_token_file")}
_PATH_LISTS = {("tls", "trust_anchors"), ("sealing", "previous_keys")}


def _absolute(raw: dict, base: Path) -> dict:
    """The file's relative paths made absolute against its own directory (merged files keep their meaning)."""
    def fix(v):
        return str(base / v) if isinstance(v, str) and v and not os.path.isabs(v) else v
    out = dict(raw)
    for section in {s for s, _ in _PATHS | _PATH_LISTS} | {"api"}:
        if not isinstance(out.get(section), Mapping):
            continue
        sec = out[section] = dict(out[section])
        for s, k in _PATHS:
            if s == section and k in sec:
                sec[k] = fix(sec[k])
        for s, k in _PATH_LISTS:
            if s == section and k in sec:
                sec[k] = [fix(x) for x in sec[k]] if isinstance(sec[k], list) else fix(sec[k])
        if section == "api" and isinstance(sec.get("tokens"), list):
            sec["tokens"] = [{**c, "token_file": fix(c["token_file"])} if isinstance(c, Mapping) and "token_file" in c
                             else c for c in sec["tokens"]]
    return out


def _distinct(agencies: list[Settings], files: dict[str, str], prefixes: dict[str, str]) -> None:
    """One data directory per agency, one agency per token: either shared would mix two agencies' mail."""
    dirs: dict[Path, str] = {}
    tokens: dict[bytes, str] = {}
    for s in agencies:
        file, prefix = files[s.node.code], prefixes.get(s.node.code, "")
        d = Path(s.node.data_dir).resolve()
        if d in dirs:
            raise ConfigError(f"{d} is also the data directory of {dirs[d]}", prefix + "node.data_dir",
                              "a data directory of this agency's own", file)
        dirs[d] = s.node.code
        for key, token in [("api.token", s.api.token)] + [(f"api.tokens[{i}]", c.token) for i, c in enumerate(s.api.tokens)]:
            digest = hashlib.sha256(token.encode()).digest()
            if tokens.get(digest, s.node.code) != s.node.code:
                raise ConfigError(f"the same token is also {tokens[digest]}'s", prefix + key,
                                  "a token of this agency's own", file)
            tokens[digest] = s.node.code


def _admin_token(host: Any, base: Path, host_file: str) -> str | None:
    if host is None:
        return None
    if not isinstance(host, Mapping) or set(host) - {"admin_token_file"}:
        raise ConfigError("unknown key; expected one of: admin_token_file", "host", "a mapping with key "
                          "admin_token_file", host_file)
    name = host.get("admin_token_file")
    if name is None:
        return None
    p = Path(name) if os.path.isabs(name) else base / name
    try:
        token = p.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {p}: {getattr(e, 'strerror', None) or e}", "host.admin_token_file",
                          "a readable file holding the host admin token", host_file) from None
    if len(token) < MIN_ADMIN_TOKEN or not token.isprintable():
        raise ConfigError(f"the token in {p} is shorter than {MIN_ADMIN_TOKEN} characters or unprintable",
                          "host.admin_token_file", f"a token of at least {MIN_ADMIN_TOKEN} printable characters",
                          host_file)
    return token
