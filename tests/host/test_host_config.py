"""A host file and its agency files: process-wide keys stay in the host file, each agency's own in its file,
and what would mix two agencies (a data directory, a code, a token) is refused naming the file and key."""
from __future__ import annotations

import pytest
import yaml

from node.config import ConfigError
from node.harness import hosts, nodes
from node.harness.nodes import NodeSpec
from node.host.config import load_host, settings_for

P, C1, C2 = "000.00.01.H53", "000.01.01.H53", "000.02.01.H53"


@pytest.fixture()
def host(tmp_path):
    ca = nodes.make_ca(tmp_path)
    listen = "127.0.0.1:7000"
    specs = [NodeSpec(P, "Tỉnh", extra={"node": {"root": True}}), NodeSpec(C1, "Xã 1", peers={P: P}, parent=P),
             NodeSpec(C2, "Xã 2", peers={P: P}, parent=P)]
    return hosts.prepare_host(tmp_path, ca, "h", specs, {c: listen for c in (P, C1, C2)}, listen=listen,
                              extra={"limits": {"envelopes_per_batch": 77}, "registry": {"advertise": "tinh.vn:7000"}})


def edit(path, change):
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def test_each_agency_is_the_host_file_with_its_own_over_it(host):
    config = load_host(host.config)
    assert config.several and [s.node.code for s in config.agencies] == [P, C1, C2]
    for s in config.agencies:
        assert s.listen == host.listen and s.api.listen == host.api  # process-wide: the host file's
        assert s.limits.envelopes_per_batch == 77
        assert s.registry.advertise == "tinh.vn:7000"  # the host's, unless the agency sets its own
        assert s.tls.cert == host.dir / s.node.code / "keys" / "node.pem"  # its own identity
        assert s.source == host.agency_file(s.node.code)
    assert config.admin_token == host.admin_token
    assert settings_for(host.config, C2).node.code == C2


@pytest.mark.parametrize("key,value", [("listen", "127.0.0.1:1"), ("limits", {"envelopes_per_batch": 5}),
                                       ("tls", {"trust_anchors": ["x.pem"]}), ("api", {"listen": "127.0.0.1:2"}),
                                       ("log_level", "DEBUG")])
def test_a_process_wide_key_in_an_agency_file_names_the_file_and_key(host, key, value):
    edit(host.agency_file(C1), lambda d: d.update({key: value}))
    with pytest.raises(ConfigError) as e:
        load_host(host.config)
    assert e.value.file == str(host.agency_file(C1))
    assert e.value.path.split(".")[0] == key and "process-wide" in e.value.message


def test_two_agencies_with_one_data_directory(host):
    shared = str(host.dir / P / "data")
    edit(host.agency_file(C2), lambda d: d["node"].update({"data_dir": shared}))
    with pytest.raises(ConfigError) as e:
        load_host(host.config)
    assert (e.value.path, e.value.file) == ("node.data_dir", str(host.agency_file(C2)))


def test_two_agencies_with_one_token(host):
    token = yaml.safe_load(host.agency_file(P).read_text())["api"]["token"]
    edit(host.agency_file(C1), lambda d: d["api"].update({"token": token}))
    with pytest.raises(ConfigError) as e:
        load_host(host.config)
    assert e.value.path == "api.token" and P in e.value.message


def test_one_code_in_two_files(host):
    (host.dir / "agencies" / "again.yaml").write_text(host.agency_file(C1).read_text())
    with pytest.raises(ConfigError) as e:
        load_host(host.config)
    assert e.value.path == "node.code"


def test_a_bad_process_wide_value_is_the_host_files(host):
    edit(host.config, lambda d: d.update({"listen": "nowhere"}))
    with pytest.raises(ConfigError) as e:
        load_host(host.config)
    assert (e.value.path, e.value.file) == ("listen", str(host.config))


def test_the_cli_must_name_the_agency_on_a_host_of_several(host):
    with pytest.raises(ConfigError) as e:
        settings_for(host.config)
    assert e.value.path == "--agency" and C1 in e.value.message
    with pytest.raises(ConfigError):
        settings_for(host.config, "000.09.01.H53")


def test_a_node_yaml_is_a_host_of_one(tmp_path):
    ca = nodes.make_ca(tmp_path)
    handle = nodes.prepare_node(tmp_path, ca, NodeSpec(P, "Tỉnh"), {P: "127.0.0.1:7000"})
    config = load_host(handle.config)
    assert not config.several and [s.node.code for s in config.agencies] == [P]
    assert settings_for(handle.config) == config.agencies[0]


def test_check_config_checks_every_agency_of_a_host(host):
    from node.check_config import check
    ok = check(str(host.config))
    assert not ok.errors and ok.agencies == [P, C1, C2]
    (host.dir / C2 / "keys" / "node.key").chmod(0o644)  # what run refuses: a key others can read
    bad = check(str(host.config))
    assert [(e.path, e.file) for e in bad.errors] == [("tls.key", str(host.agency_file(C2)))]
