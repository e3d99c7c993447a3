"""Tests for node/config.py: typed loading, exact error paths, docs kept honest."""

from __future__ import annotations

import copy
import pickle
import re
import shutil
from pathlib import Path

import pytest
import yaml

from node.config import (
    ConfigError,
    FrozenMap,
    Peer,
    dump_config,
    load_config,
    parse_config,
    schema_keys,
)

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "Vq3xZ8-rT2pLkW9_hN4cYb7Ud1eFs6Gj0mQaHt5iOoRw"      # 44 URL-safe characters: ~262 bits
FILE_TOKEN = "fL7_kQ2xWz9-Rt4YpN8hC3vBm6Ua1SdGe5JoXiZq0HcT"
EXAMPLE = ROOT / "configs" / "node.example.yaml"
DOCS = ROOT / "docs" / "config.md"


def touch(path: Path, text: str = "x\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def minimal(base: Path) -> dict:
    """Smallest valid config; creates the files it references under base."""
    for name in ("keys/node.key", "keys/node.pem", "keys/ca.pem"):
        touch(base / name)
    return {
        "node": {"code": "000.00.01.H53", "name": "Sở Nội vụ", "data_dir": "data"},
        "listen": "127.0.0.1:7001",
        "tls": {"key": "keys/node.key", "cert": "keys/node.pem", "trust_anchors": ["keys/ca.pem"]},
        "api": {"listen": "127.0.0.1:7101", "token": TOKEN},
    }


def error_of(data, base: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(data, base)
    return info.value


def write_yaml(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- valid configs


def test_full_config_loads_typed_values(tmp_path):
    data = minimal(tmp_path)
    touch(tmp_path / "secrets/api.token", f"  {FILE_TOKEN} \n")
    del data["api"]["token"]
    data["api"]["token_file"] = "secrets/api.token"
    data["node"]["parent"] = "000.00.00.H53"
    data["tls"]["insecure_plaintext"] = True
    data["peers"] = [
        {"code": "000.00.02.H53", "address": "127.0.0.1:7002"},
        {"code": "000.00.03.H53", "address": "[::1]:7003"},
        {"code": "vxp.saas.03", "address": "node-3.example.vn:0"},
    ]
    data["retry"] = {"first_delay": "250ms", "multiplier": 3, "max_delay": "1.5h", "jitter": [1, 1]}
    data["messages"] = {"lifetime": "2d", "max_size": "1.5KB", "batch_size": 1000}
    data["parents_of"] = {"vxp.saas.03": "000.00.00.H53"}
    data["log_level"] = "debug"
    path = write_yaml(tmp_path / "node.yaml", data)

    s = load_config(path)

    assert s.source == path
    assert s.node.code == "000.00.01.H53"
    assert s.node.name == "Sở Nội vụ"
    assert s.node.data_dir == tmp_path / "data"
    assert s.node.parent == "000.00.00.H53"
    assert s.listen == "127.0.0.1:7001"
    assert s.tls.key == tmp_path / "keys/node.key"
    assert s.tls.cert == tmp_path / "keys/node.pem"
    assert s.tls.trust_anchors == (tmp_path / "keys/ca.pem",)
    assert s.tls.insecure_plaintext is True
    assert s.api.listen == "127.0.0.1:7101"
    assert s.api.token == FILE_TOKEN
    assert s.api.token_file == tmp_path / "secrets/api.token"
    assert s.peers[1] == Peer(code="000.00.03.H53", address="[::1]:7003")
    assert s.peer_address("vxp.saas.03") == "node-3.example.vn:0"
    assert s.peer_address("000.00.09.H53") is None
    assert s.retry.first_delay == 0.25
    assert isinstance(s.retry.multiplier, float) and s.retry.multiplier == 3.0
    assert s.retry.max_delay == 5400.0
    assert s.retry.jitter == (1.0, 1.0)
    assert s.messages.lifetime == 172800.0
    assert s.messages.max_size == 1500
    assert s.messages.batch_size == 1000
    assert dict(s.parents_of) == {"vxp.saas.03": "000.00.00.H53"}
    assert s.log_level == "DEBUG"
    # Frozen all the way down, and hashable.
    with pytest.raises(AttributeError):
        s.retry.multiplier = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.parents_of["x"] = "y"  # type: ignore[index]
    hash(s)
    assert FILE_TOKEN not in repr(s)


def test_defaults_fill_in(tmp_path):
    s = parse_config(minimal(tmp_path), tmp_path)
    assert s.source is None
    assert s.node.parent is None
    assert s.tls.insecure_plaintext is False
    assert s.api.token == TOKEN and s.api.token_file is None
    assert s.peers == ()
    assert (s.retry.first_delay, s.retry.multiplier, s.retry.max_delay, s.retry.jitter) == (1.0, 2.0, 600.0, (0.8, 1.4))
    assert (s.messages.lifetime, s.messages.max_size, s.messages.batch_size) == (7 * 86400.0, 16 * 1024 * 1024, 256)
    assert s.parents_of == {}
    assert s.log_level == "INFO"


def test_null_means_absent(tmp_path):
    data = minimal(tmp_path)
    data.update(peers=None, retry={"first_delay": None}, messages=None, parents_of=None, log_level=None)
    s = parse_config(data, tmp_path)
    assert s == parse_config(minimal(tmp_path), tmp_path)


def test_relative_paths_resolve_against_config_dir(tmp_path, monkeypatch):
    conf_dir = tmp_path / "etc" / "node"
    data = minimal(conf_dir)
    data["tls"]["trust_anchors"] = "keys/ca.pem"  # single string -> one-item list
    data["tls"]["key"] = str(conf_dir / "keys/node.key")  # absolute stays as is
    path = write_yaml(conf_dir / "node.yaml", data)
    monkeypatch.chdir(tmp_path)  # cwd differs from the config dir

    s = load_config(Path("etc/node/node.yaml"))

    assert s.node.data_dir == conf_dir / "data"
    assert s.node.data_dir.is_absolute()
    assert s.tls.cert == conf_dir / "keys/node.pem"
    assert s.tls.key == conf_dir / "keys/node.key"
    assert s.tls.trust_anchors == (conf_dir / "keys/ca.pem",)
    assert s.source == path


def test_data_dir_need_not_exist_but_must_not_be_a_file(tmp_path):
    data = minimal(tmp_path)
    data["node"]["data_dir"] = "does/not/exist/yet"
    assert parse_config(data, tmp_path).node.data_dir == tmp_path / "does/not/exist/yet"
    touch(tmp_path / "afile")
    data["node"]["data_dir"] = "afile"
    err = error_of(data, tmp_path)
    assert err.path == "node.data_dir"
    assert "not a directory" in err.message


@pytest.mark.parametrize(
    "value, seconds",
    [(5, 5.0), (0.5, 0.5), ("250ms", 0.25), ("1.5s", 1.5), ("10m", 600.0), ("2h", 7200.0), ("7d", 604800.0), ("0s", 0.0)],
)
def test_durations(tmp_path, value, seconds):
    data = minimal(tmp_path)
    data["retry"] = {"first_delay": value, "max_delay": "30d"}
    assert parse_config(data, tmp_path).retry.first_delay == seconds


@pytest.mark.parametrize(
    "value, size",
    [(1, 1), ("10B", 10), ("2KB", 2000), ("2KiB", 2048), ("3MB", 3_000_000), ("16MiB", 16 << 20), ("1GB", 10**9), ("1GiB", 1 << 30)],
)
def test_sizes(tmp_path, value, size):
    data = minimal(tmp_path)
    data["messages"] = {"max_size": value}
    assert parse_config(data, tmp_path).messages.max_size == size


@pytest.mark.parametrize("addr", ["0.0.0.0:0", "localhost:65535", "[2001:db8::1]:7001", "node_a:7001", "a.b-c.vn:1"])
def test_host_port_accepts(tmp_path, addr):
    data = minimal(tmp_path)
    data["listen"] = addr
    assert parse_config(data, tmp_path).listen == addr


# --------------------------------------------------------------------------- errors


def test_unknown_key_nested(tmp_path):
    data = minimal(tmp_path)
    data["tls"]["cert_fle"] = data["tls"].pop("cert")
    err = error_of(data, tmp_path)
    assert err.path == "tls.cert_fle"
    assert str(err) == "<config>: tls.cert_fle: unknown key; expected one of: cert, key, trust_anchors, crl, crl_grace, insecure_plaintext"


def test_unknown_key_top_level(tmp_path):
    data = minimal(tmp_path)
    data["peer"] = []
    err = error_of(data, tmp_path)
    assert err.path == "peer"
    assert err.message.startswith("unknown key; expected one of: node, listen, tls, api, peers, retry,")


def test_unknown_key_in_list_item(tmp_path):
    data = minimal(tmp_path)
    data["peers"] = [{"code": "000.00.02.H53", "address": "h:1", "adress": "h:2"}]
    assert error_of(data, tmp_path).path == "peers[0].adress"


def test_wrong_type_names_expected_type(tmp_path):
    data = minimal(tmp_path)
    data["retry"] = {"multiplier": "fast"}
    err = error_of(data, tmp_path)
    assert (err.path, err.expected) == ("retry.multiplier", "a number")
    assert str(err) == '<config>: retry.multiplier: expected a number, got "fast"'


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("tls", "insecure_plaintext", "no", 'expected true or false, got "no"'),
        ("messages", "batch_size", 0, "expected an integer 1..1000, got 0"),
        ("messages", "batch_size", 64.5, "expected an integer, got 64.5"),
        ("messages", "batch_size", True, "expected an integer, got true"),
        ("messages", "send_workers", 0, "expected an integer 1..256, got 0"),
        ("messages", "send_workers", 257, "expected an integer 1..256, got 257"),
        ("retry", "multiplier", 0.5, "expected a number >= 1, got 0.5"),
        ("node", "name", "  ", 'expected a non-empty string, got "  "'),
        ("node", "name", "UBND\n2026 ERROR forged", 'expected a name without control characters, got '
                                                   '"UBND\\n2026 ERROR forged" (U+000A)'),
        ("node", "name", "x" * 301, None),
        ("node", "code", "000.00.01.h53", None),
        ("node", "code", "000..01", None),
        ("node", "code", "X" * 36, None),
        ("node", "parent", 42, None),
        ("api", "listen", 7101, "expected host:port, got 7101"),
    ],
)
def test_wrong_values(tmp_path, section, key, value, message):
    data = minimal(tmp_path)
    data.setdefault(section, {})[key] = value
    err = error_of(data, tmp_path)
    assert err.path == f"{section}.{key}"
    if message:
        assert err.message == message
    elif key == "name":
        assert err.message.startswith("expected a name of at most 300 characters")
    else:
        assert err.message.startswith("expected an agency code")


def test_bad_log_level(tmp_path):
    data = minimal(tmp_path)
    data["log_level"] = "VERBOSE"
    err = error_of(data, tmp_path)
    assert str(err) == '<config>: log_level: expected one of DEBUG, INFO, WARNING, ERROR, got "VERBOSE"'


def test_section_of_wrong_type(tmp_path):
    data = minimal(tmp_path)
    data["retry"] = [1, 2]
    err = error_of(data, tmp_path)
    assert err.path == "retry"
    assert err.message == "expected a mapping with keys first_delay, multiplier, max_delay, jitter, got [1, 2]"


@pytest.mark.parametrize("section, key", [("node", "code"), ("node", "data_dir"), ("tls", "trust_anchors"), ("api", "listen")])
def test_missing_required(tmp_path, section, key):
    data = minimal(tmp_path)
    del data[section][key]
    err = error_of(data, tmp_path)
    assert str(err) == f"<config>: {section}.{key}: required"
    assert err.path == f"{section}.{key}" and err.expected


def test_missing_section_names_first_required_key(tmp_path):
    data = minimal(tmp_path)
    del data["node"]
    assert str(error_of(data, tmp_path)) == "<config>: node.code: required"
    data = minimal(tmp_path)
    data["node"]["code"] = None  # null counts as absent
    assert error_of(data, tmp_path).path == "node.code"
    data = minimal(tmp_path)
    del data["listen"]
    assert str(error_of(data, tmp_path)) == "<config>: listen: required"


def test_missing_file(tmp_path):
    data = minimal(tmp_path)
    data["tls"]["key"] = "keys/missing.key"
    err = error_of(data, tmp_path)
    assert (err.path, err.expected) == ("tls.key", "an existing file")
    assert err.message == f'expected an existing file, got "keys/missing.key" (not found: {tmp_path / "keys/missing.key"})'


def test_missing_trust_anchor_names_list_index(tmp_path):
    data = minimal(tmp_path)
    data["tls"]["trust_anchors"] = ["keys/ca.pem", "keys/other-ca.pem"]
    assert error_of(data, tmp_path).path == "tls.trust_anchors[1]"
    data["tls"]["trust_anchors"] = []
    err = error_of(data, tmp_path)
    assert err.message == "expected a non-empty list of existing files, got an empty list"


def test_directory_is_not_a_file(tmp_path):
    data = minimal(tmp_path)
    data["tls"]["cert"] = "keys"
    err = error_of(data, tmp_path)
    assert err.path == "tls.cert" and "not a regular file" in err.message


def test_bad_host_port_in_peers(tmp_path):
    data = minimal(tmp_path)
    data["peers"] = [
        {"code": "000.00.02.H53", "address": "127.0.0.1:7002"},
        {"code": "000.00.03.H53", "address": "127.0.0.1:7003"},
        {"code": "000.00.04.H53", "address": "abc"},
    ]
    path = write_yaml(tmp_path / "node.yaml", data)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert (err.path, err.expected) == ("peers[2].address", "host:port")
    assert str(err) == f'{path}: peers[2].address: expected host:port, got "abc"'


@pytest.mark.parametrize(
    "addr", [":7001", "host:", "host:70000", "host:-1", "host:port", "[::1:7001", "[zz::1]:7", "999.1.1.1:7", "a b:7", "h:1:2", "-x:7"]
)
def test_host_port_rejects(tmp_path, addr):
    data = minimal(tmp_path)
    data["listen"] = addr
    err = error_of(data, tmp_path)
    assert err.path == "listen"
    assert (err.expected, err.message.split(" (")[0]) == ("host:port", f'expected host:port, got "{addr}"')


def test_duplicate_peer_code(tmp_path):
    data = minimal(tmp_path)
    data["peers"] = [
        {"code": "000.00.01.H01", "address": "h:1"},
        {"code": "000.00.02.H53", "address": "h:2"},
        {"code": "000.00.03.H53", "address": "h:3"},
        {"code": "000.00.02.H53", "address": "h:4"},
    ]
    err = error_of(data, tmp_path)
    assert str(err) == "<config>: peers[3].code: duplicate of peers[1]"


@pytest.mark.parametrize("value", ["fast", "10", "10 minutes", "-1s", -1, "1.5w", True, [1], float("inf")])
def test_bad_duration(tmp_path, value):
    data = minimal(tmp_path)
    data["retry"] = {"first_delay": value}
    err = error_of(data, tmp_path)
    assert err.path == "retry.first_delay"
    assert err.message.startswith("expected a duration")


def test_zero_lifetime_rejected(tmp_path):
    data = minimal(tmp_path)
    data["messages"] = {"lifetime": "0s"}
    assert str(error_of(data, tmp_path)) == '<config>: messages.lifetime: expected a duration > 0, got "0s"'


def test_max_delay_below_first_delay(tmp_path):
    data = minimal(tmp_path)
    data["retry"] = {"first_delay": "2m", "max_delay": "30s"}
    err = error_of(data, tmp_path)
    assert str(err) == '<config>: retry.max_delay: expected a duration >= retry.first_delay (120s), got "30s"'
    data["retry"] = {"first_delay": "1h"}  # default max_delay 10m is now too small
    assert error_of(data, tmp_path).path == "retry.max_delay"


@pytest.mark.parametrize("value", ["big", "16 mb", "1.5B", "-1KB", -5, 0, 1.5, "0MiB"])
def test_bad_size(tmp_path, value):
    data = minimal(tmp_path)
    data["messages"] = {"max_size": value}
    err = error_of(data, tmp_path)
    assert err.path == "messages.max_size"
    assert err.message.startswith("expected a size")


@pytest.mark.parametrize(
    "value, path, message",
    [
        ([1.4, 0.8], "retry.jitter", "expected two numbers [low, high] with 0 < low <= high, got [1.4, 0.8]"),
        ([0.8], "retry.jitter", "expected two numbers [low, high] with 0 < low <= high, got [0.8]"),
        ([0.8, 1.0, 1.4], "retry.jitter", "expected two numbers [low, high] with 0 < low <= high, got [0.8, 1.0, 1.4]"),
        (1.0, "retry.jitter", "expected two numbers [low, high] with 0 < low <= high, got 1.0"),
        ([0, 1], "retry.jitter[0]", "expected a number > 0, got 0"),
        ([0.5, "x"], "retry.jitter[1]", 'expected a number, got "x"'),
    ],
)
def test_bad_jitter(tmp_path, value, path, message):
    data = minimal(tmp_path)
    data["retry"] = {"jitter": value}
    err = error_of(data, tmp_path)
    assert (err.path, err.message) == (path, message)


def test_token_and_token_file_both_or_neither(tmp_path):
    data = minimal(tmp_path)
    touch(tmp_path / "api.token", "t")
    data["api"]["token_file"] = "api.token"
    err = error_of(data, tmp_path)
    assert str(err) == "<config>: api: expected exactly one of token, token_file, got both"
    del data["api"]["token"], data["api"]["token_file"]
    err = error_of(data, tmp_path)
    assert str(err) == "<config>: api: expected exactly one of token, token_file, got neither"


def test_token_file_problems(tmp_path):
    data = minimal(tmp_path)
    del data["api"]["token"]
    data["api"]["token_file"] = "nope.token"
    assert error_of(data, tmp_path).path == "api.token_file"
    touch(tmp_path / "empty.token", " \n")
    data["api"]["token_file"] = "empty.token"
    err = error_of(data, tmp_path)
    assert err.path == "api.token_file" and "file is empty" in err.message


def test_bad_parents_of(tmp_path):
    data = minimal(tmp_path)
    data["parents_of"] = {"vxp.saas.03": "bad..code"}
    err = error_of(data, tmp_path)
    assert err.path == 'parents_of["vxp.saas.03"]'
    data["parents_of"] = ["x"]
    assert error_of(data, tmp_path).path == "parents_of"


def test_yaml_syntax_error_has_line(tmp_path):
    path = tmp_path / "node.yaml"
    path.write_text("node:\n  code: x\n  name: [unclosed\nlisten: h:1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert err.path == "" and err.line is not None
    assert re.fullmatch(rf"{re.escape(str(path))}: line {err.line}, column \d+: invalid YAML: .+", str(err))
    path.write_text("node:\n\tcode: x\n", encoding="utf-8")  # tab indentation
    with pytest.raises(ConfigError, match=r": line 2, column 1: invalid YAML"):
        load_config(path)


def test_duplicate_yaml_key_is_an_error(tmp_path):
    path = tmp_path / "node.yaml"
    path.write_text("log_level: INFO\nlisten: h:1\nlog_level: DEBUG\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.line == 3
    assert 'found duplicate key "log_level"' in str(info.value)


@pytest.mark.parametrize(
    "text, got", [("", "an empty document"), ("- a\n- b\n", '["a", "b"]'), ("just a string\n", '"just a string"')]
)
def test_top_level_not_a_mapping(tmp_path, text, got):
    path = tmp_path / "node.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: expected a mapping of settings at the top level, got {got}"
    assert info.value.path == ""


def test_missing_config_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: config file not found"
    assert info.value.path == "" and info.value.file == str(path)


def test_config_error_pickles():
    err = ConfigError("required", "node.code", "an agency code", "node.yaml")
    again = pickle.loads(pickle.dumps(err))
    assert (str(again), again.path, again.expected) == ("node.yaml: node.code: required", "node.code", "an agency code")


# --------------------------------------------------------------------------- dump_config


def test_dump_round_trip(tmp_path):
    data = minimal(tmp_path)
    touch(tmp_path / "secrets/api.token", FILE_TOKEN + "\n")
    del data["api"]["token"]
    data["api"]["token_file"] = "secrets/api.token"
    data["node"]["parent"] = "000.00.00.H53"
    data["peers"] = [{"code": "000.00.02.H53", "address": "[::1]:7002"}]
    data["retry"] = {"first_delay": 0.1, "max_delay": "90m", "jitter": [0.9, 1.1], "multiplier": 1.5}
    data["messages"] = {"lifetime": 1234.5, "max_size": 1001, "batch_size": 7, "send_workers": 3}
    data["parents_of"] = {"vxp.saas.03": "000.00.00.H53"}
    s = load_config(write_yaml(tmp_path / "node.yaml", data))

    dumped = dump_config(s)
    # Plain YAML: survives safe_dump/safe_load, and only plain types inside.
    text = yaml.safe_dump(dumped, allow_unicode=True)
    assert FILE_TOKEN not in text  # secret stays in its file
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert parse_config(yaml.safe_load(text), elsewhere) == s  # absolute paths: base_dir irrelevant
    assert dumped["retry"]["max_delay"] == "90m"
    assert dumped["messages"] == {"lifetime": "1234.5s", "max_size": 1001, "batch_size": 7, "send_workers": 3}
    assert dumped["retry"]["first_delay"] == "100ms"
    assert dumped["tls"]["trust_anchors"] == [str(tmp_path / "keys/ca.pem")]

    # Defaults and an inline token round-trip too.
    s2 = parse_config(minimal(tmp_path), tmp_path)
    d2 = dump_config(s2)
    assert d2["api"]["token"] == TOKEN
    assert d2["messages"] == {"lifetime": "7d", "max_size": "16MiB", "batch_size": 256, "send_workers": 8}
    assert parse_config(copy.deepcopy(d2), tmp_path) == s2


@pytest.mark.parametrize(
    "seconds", [0.0, 0.001, 0.1, 0.25, 1.0, 1.5, 59.999, 600.0, 1234.5, 86400.0, 90061.0, 1e-5, 1 / 3, 123456789.123]
)
def test_dump_round_trips_awkward_durations(tmp_path, seconds):
    data = minimal(tmp_path)
    data["retry"] = {"first_delay": seconds, "max_delay": 1e9}
    data["messages"] = {"lifetime": seconds or 1.0}
    s = parse_config(data, tmp_path)
    assert parse_config(yaml.safe_load(yaml.safe_dump(dump_config(s))), tmp_path) == s


def test_dump_lets_harness_write_configs(tmp_path):
    """Harness flow: build from a dict, tweak with dataclasses.replace, write, load."""
    import dataclasses

    s = parse_config(minimal(tmp_path), tmp_path)
    s = dataclasses.replace(s, peers=(Peer(code="000.00.09.H53", address="127.0.0.1:0"),), parents_of=FrozenMap({"a.b": "c.d"}))
    (tmp_path / "sub").mkdir()
    assert load_config(write_yaml(tmp_path / "sub" / "gen.yaml", dump_config(s))) == s


# --------------------------------------------------------------------------- docs kept honest


def _example_in(tmp_path: Path) -> Path:
    """Copy the example next to dummy versions of the files it references."""
    dst = tmp_path / "node.example.yaml"
    shutil.copy(EXAMPLE, dst)
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    refs = [data["tls"]["key"], data["tls"]["cert"], data["api"].get("token_file")]
    anchors = data["tls"]["trust_anchors"]
    refs += [anchors] if isinstance(anchors, str) else anchors
    for ref in filter(None, refs):
        touch(tmp_path / ref, FILE_TOKEN + "\n")
    for i, client in enumerate(data["api"].get("tokens") or ()):  # each client a token of its own
        if client.get("token_file"):
            touch(tmp_path / client["token_file"], f"{FILE_TOKEN}-{i}\n")
    return dst


def _has_key(data, parts: list[str]) -> bool:
    if not parts:
        return True
    head, rest = parts[0], parts[1:]
    if head.endswith("[]"):
        items = data.get(head[:-2]) if isinstance(data, dict) else None
        return isinstance(items, list) and any(_has_key(it, rest) for it in items)
    return isinstance(data, dict) and head in data and _has_key(data[head], rest)


def _doc_rows() -> dict[str, str]:
    """First-column key path -> Default cell, from the tables in docs/config.md."""
    rows = {}
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\|\s*`([^`]+)`\s*\|[^|]*\|\s*([^|]*?)\s*\|", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def test_example_has_every_key_and_loads(tmp_path):
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    missing = [k.path for k in schema_keys() if not _has_key(data, k.path.split("."))]
    assert not missing, f"keys missing from {EXAMPLE.name}: {missing}"
    s = load_config(_example_in(tmp_path))
    assert s.node.code == "000.00.01.H53"
    assert s.api.token == FILE_TOKEN
    assert s.peer_address("000.00.02.H53") == "127.0.0.1:7002"


def test_example_comments_every_key():
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"\s*(?:- )?([a-z_]+):", line)
        if not m:
            continue
        commented = "#" in line or (i > 0 and lines[i - 1].lstrip().startswith("#"))
        assert commented, f"{EXAMPLE.name}:{i + 1}: key {m.group(1)!r} has no comment"


def test_docs_cover_every_key_and_no_others():
    rows = _doc_rows()
    paths = [k.path for k in schema_keys()]
    assert sorted(rows) == sorted(paths)


def test_docs_defaults_are_real(tmp_path):
    """A backticked Default in docs/config.md must equal what the loader uses when the key is absent."""
    base = parse_config(minimal(tmp_path), tmp_path)
    rows = _doc_rows()
    checked = 0
    for info in schema_keys():
        cell = rows[info.path]
        if info.required:
            assert cell == "**required**", info.path
            continue
        m = re.fullmatch(r"`(.*)`", cell)
        if not m:
            continue  # "—": explained in the Meaning column (api.token / token_file)
        data = minimal(tmp_path)
        *parents, leaf = info.path.split(".")
        target = data
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = yaml.safe_load(m.group(1))
        assert parse_config(data, tmp_path) == base, f"docs default of {info.path} is not the real default"
        checked += 1
    assert checked >= 10


# --------------------------------------------------------------------------- kept from the hand-written walker


def test_unknown_key_set_to_null_is_still_unknown(tmp_path):
    data = minimal(tmp_path)
    data["tls"]["cert_fle"] = None
    assert error_of(data, tmp_path).path == "tls.cert_fle"
    data = minimal(tmp_path)
    data["source"] = "elsewhere.yaml"  # Settings.source is set by load_config, never a key
    err = error_of(data, tmp_path)
    assert err.path == "source" and err.message.startswith("unknown key")


def test_list_item_of_wrong_type_names_the_item(tmp_path):
    data = minimal(tmp_path)
    data["peers"] = [{"code": "000.00.02.H53", "address": "h:1"}, "000.00.03.H53"]
    err = error_of(data, tmp_path)
    assert str(err) == '<config>: peers[1]: expected a mapping with keys code, address, got "000.00.03.H53"'
    data["peers"] = {"code": "000.00.02.H53", "address": "h:1"}
    assert error_of(data, tmp_path).message.startswith("expected a list of {code, address}, got")


def test_rule_against_a_default_says_so(tmp_path):
    data = minimal(tmp_path)
    data["registry"] = {"heartbeat": "1m"}  # default stale_after 30s is now too small
    err = error_of(data, tmp_path)
    assert str(err) == '<config>: registry.stale_after: expected a duration >= registry.heartbeat (60s), got "30s" (the default)'


def test_unknown_key_first_then_declaration_order(tmp_path):
    data = minimal(tmp_path)
    data["retry"] = {"multiplier": "fast", "first_delay": "soon"}
    assert error_of(data, tmp_path).path == "retry.first_delay"
    data["retry"]["bogus"] = 1
    assert error_of(data, tmp_path).path == "retry.bogus"
    data["node"]["name"] = ""  # an earlier section still comes first
    assert error_of(data, tmp_path).path == "node.name"


def test_replace_revalidates_and_keeps_a_read_token(tmp_path):
    import dataclasses

    import pydantic

    data = minimal(tmp_path)
    touch(tmp_path / "api.token", FILE_TOKEN + "\n")
    del data["api"]["token"]
    data["api"]["token_file"] = "api.token"
    s = parse_config(data, tmp_path)
    api = dataclasses.replace(s.api, listen="127.0.0.1:7999")
    assert (api.token, api.token_file) == (FILE_TOKEN, tmp_path / "api.token")
    with pytest.raises(pydantic.ValidationError):
        dataclasses.replace(s, listen="abc")


# ---- the local API is not exposed ---------------------------------------------------------------

@pytest.mark.parametrize("listen", ["0.0.0.0:7101", "10.1.2.3:7101", "[::]:7101", "node.example.vn:7101"])
def test_the_local_api_refuses_to_listen_beyond_loopback(tmp_path, listen):
    data = minimal(tmp_path)
    data["api"]["listen"] = listen
    err = error_of(data, tmp_path)
    assert err.path == "api.listen" and "loopback" in str(err)


@pytest.mark.parametrize("listen", ["127.0.0.1:7101", "127.8.9.10:0", "[::1]:7101", "localhost:7101"])
def test_the_local_api_may_listen_on_any_loopback_address(tmp_path, listen):
    data = minimal(tmp_path)
    data["api"]["listen"] = listen
    assert parse_config(data, tmp_path).api.listen == listen


@pytest.mark.parametrize("listen", ["0.0.0.0:7102", "10.1.2.3:7102", "[::]:7102", "node.example.vn:7102", "nope"])
def test_the_http_face_refuses_to_listen_beyond_loopback(tmp_path, listen):
    data = minimal(tmp_path)
    data["api"]["http_listen"] = listen
    err = error_of(data, tmp_path)
    assert err.path == "api.http_listen", err


def test_the_http_face_is_off_unless_set_and_may_take_any_loopback_port(tmp_path):
    data = minimal(tmp_path)
    assert parse_config(data, tmp_path).api.http_listen is None
    data["api"]["http_listen"] = "127.0.0.1:0"
    assert parse_config(data, tmp_path).api.http_listen == "127.0.0.1:0"


@pytest.mark.parametrize("drawn", [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ",   # token_urlsafe(32) that drew no digit and no '-'/'_'
    "abcdefghijklmnopqrstuvwxyz01234567890123456",   # ... nor any capital
    "Vq3xZ8-rT2pLkW9_hN4cYb7Ud1eFVq3xZ8-rT2pLkW9",
])
def test_every_draw_of_token_urlsafe_32_is_strong_enough(tmp_path, drawn):
    """The token the docs tell admins to make passes however its 43 characters fell (once, about one draw in
    1,500 was refused for the classes it happened not to show, and a harness node failed to start)."""
    data = minimal(tmp_path)
    data["api"]["token"] = drawn
    assert parse_config(data, tmp_path).api.token == drawn


@pytest.mark.parametrize("weak", ["s3cret", "a" * 100, "0123456789abcdef", "Vq3xZ8-rT2pLkW9_hN4cYb7Ud1eF"])
def test_a_weak_token_is_refused_without_being_shown(tmp_path, weak):
    data = minimal(tmp_path)
    data["api"]["token"] = weak
    err = error_of(data, tmp_path)
    assert err.path == "api.token" and "too weak" in str(err) and weak not in str(err)
    del data["api"]["token"]
    touch(tmp_path / "weak.token", weak + "\n")
    data["api"]["token_file"] = "weak.token"
    err = error_of(data, tmp_path)
    assert err.path == "api.token_file" and weak not in str(err)


def test_limits_are_typed_and_bounded(tmp_path):
    data = minimal(tmp_path)
    data["limits"] = {"recipients_per_send": 20, "lookups_per_second": 2.5}
    s = parse_config(data, tmp_path)
    assert (s.limits.recipients_per_send, s.limits.lookups_per_second, s.limits.trace_length) == (20, 2.5, 16)
    data["limits"] = {"recipients_per_send": 0}
    assert error_of(data, tmp_path).path == "limits.recipients_per_send"
    data["limits"] = {"recipient_per_send": 5}
    assert "unknown key" in str(error_of(data, tmp_path))
