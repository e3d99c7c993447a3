"""Agencies given inline in the host file's `agencies:` (beside files): each one the host file with its
mapping merged over it, exactly as a file is; the same refusals, naming `agencies[i].key` in the host file;
and a SIGHUP adds and removes an inline agency in a running host process as it does a file."""
from __future__ import annotations

import os
import signal

import pytest
import yaml

from node.config import ConfigError
from node.harness import hosts, nodes
from node.harness.inproc import FAST_REGISTRY
from node.harness.nodes import NodeSpec
from node.host.config import load_host

P, C1, C2 = "000.00.01.H53", "000.01.01.H53", "000.02.01.H53"
TIMEOUT = 60.0


def inline(h, code: str) -> dict:
    return yaml.safe_load(h.agencies[code].agency_yaml)


def edit(path, change):
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True))


@pytest.fixture()
def host(tmp_path):
    """P in a file of its own; C1 and C2 prepared, not written (the tests put them inline)."""
    ca = nodes.make_ca(tmp_path)
    listen = f"127.0.0.1:{nodes.free_port()}"
    specs = [NodeSpec(P, "Tỉnh", extra={"node": {"root": True}}), NodeSpec(C1, "Xã 1", peers={P: P}, parent=P),
             NodeSpec(C2, "Xã 2", peers={P: P}, parent=P)]
    return hosts.prepare_host(tmp_path, ca, "h", specs, {c: listen for c in (P, C1, C2)}, listen=listen,
                              extra={**FAST_REGISTRY, "limits": {"envelopes_per_batch": 77}}, write=[P])


def test_an_inline_agency_is_the_host_file_with_its_mapping_over_it(host):
    c2 = inline(host, C2)
    c2["node"]["data_dir"] = "c2-data"  # relative: to the host file's directory
    def named(d):
        del d["agencies_dir"]  # P's file is named in the list instead
        d["agencies"] = [inline(host, C1), str(host.agency_file(P)), c2]
    edit(host.config, named)
    config = load_host(host.config)
    assert [s.node.code for s in config.agencies] == [C1, P, C2]  # in the order they are named
    by = {s.node.code: s for s in config.agencies}
    for code in (C1, C2):
        s = by[code]
        assert s.limits.envelopes_per_batch == 77 and s.listen == host.listen  # the host file's
        assert s.tls.cert == host.dir / code / "keys" / "node.pem"  # its own identity
        assert s.source == host.config and config.files[code] == str(host.config)
    assert by[C2].node.data_dir == host.dir / "c2-data"


@pytest.mark.parametrize("key,value", [("listen", "127.0.0.1:1"), ("limits", {"envelopes_per_batch": 5}),
                                       ("tls", {"trust_anchors": ["x.pem"]})])
def test_a_process_wide_key_inline_is_named_by_its_place(host, key, value):
    c1 = {**inline(host, C1), key: value}
    edit(host.config, lambda d: d.update({"agencies": [c1]}))
    with pytest.raises(ConfigError) as e:
        load_host(host.config)
    assert e.value.file == str(host.config) and e.value.path.startswith(f"agencies[0].{key}")
    assert "process-wide" in e.value.message


def test_an_inline_agency_that_is_no_mapping_or_has_a_bad_key(host):
    edit(host.config, lambda d: d.update({"agencies": [7]}))
    with pytest.raises(ConfigError) as e:
        load_host(host.config)
    assert (e.value.path, e.value.file) == ("agencies[0]", str(host.config))
    c1 = inline(host, C1)
    c1["node"]["code"] = "not a code"
    edit(host.config, lambda d: d.update({"agencies": [inline(host, C2), c1]}))
    with pytest.raises(ConfigError) as e:
        load_host(host.config)
    assert (e.value.path, e.value.file) == ("agencies[1].node.code", str(host.config))


@pytest.mark.parametrize("what", ["code", "data_dir", "token"])
def test_what_would_mix_two_agencies_is_refused_inline(host, what):
    twin, c1 = inline(host, C2), inline(host, C1)
    if what == "code":
        twin["node"]["code"] = C1
    elif what == "data_dir":
        twin["node"]["data_dir"] = c1["node"]["data_dir"]
    else:
        twin["api"]["token"] = c1["api"]["token"]
    edit(host.config, lambda d: d.update({"agencies": [c1, twin]}))
    with pytest.raises(ConfigError) as e:
        load_host(host.config)
    path = {"code": "node.code", "data_dir": "node.data_dir", "token": "api.token"}[what]
    assert (e.value.path, e.value.file) == (f"agencies[1].{path}", str(host.config))


def test_sighup_adds_and_removes_an_inline_agency(host):
    """A running host process: C1 added inline and SIGHUP serves it (registered, SERVING) with no restart;
    the entry taken out and SIGHUP stops it (SERVICE_UNKNOWN, tokens gone), its data directory kept."""
    hosts.start(host)
    try:
        nodes.wait_healthy([host.agencies[P]], timeout=TIMEOUT)
        edit(host.config, lambda d: d.update({"agencies": [inline(host, C1)]}))
        os.kill(host.process.pid, signal.SIGHUP)
        hosts.wait_agency_status(host, C1, "SERVING", timeout=TIMEOUT)
        assert host.agencies[C1].client().whoami().code == C1
        edit(host.config, lambda d: d.update({"agencies": []}))
        os.kill(host.process.pid, signal.SIGHUP)
        hosts.wait_agency_status(host, C1, "SERVICE_UNKNOWN", timeout=TIMEOUT)
        assert nodes.mailbox_path(host.agencies[C1].dir).exists()
        assert host.agencies[P].client().whoami().code == P
    finally:
        status = nodes.terminate(host.agencies[P])
        print(nodes.tail(host.agencies[P], 40))
    assert status == 0


def test_an_agency_file_set_aside_reads_as_the_host_would_read_it(host, tmp_path):
    """`restore --agency-file`: the settings of an agency the host does not serve now, merged as the host would."""
    from node.host.config import agency_from_file
    aside = tmp_path / "c1.yaml.off"
    aside.write_text(host.agencies[C1].agency_yaml)
    s = agency_from_file(host.config, aside)
    assert s.node.code == C1 and s.limits.envelopes_per_batch == 77 and s.listen == host.listen
    assert C1 not in [a.node.code for a in load_host(host.config).agencies]
    with pytest.raises(ConfigError) as e:
        agency_from_file(aside, aside)  # an agency file is no host file
    assert e.value.path == "--agency-file"


def test_doctor_names_an_inline_agencys_keys_by_their_place_in_the_host_file(host):
    """An inline agency's key is found at `agencies[i].KEY` in the host file; one it takes from the host file's
    common part keeps its own name, where the operator finds it; an agency of its own file, as written there."""
    from node.doctor import OK, PROBLEM, diagnose
    c2 = inline(host, C2)
    c2["node"]["data_dir"] = "c2-data"
    (host.dir / "c2-data").mkdir()
    os.chmod(host.dir / "c2-data", 0o755)  # open to others: a problem doctor names by its key

    def named(d):
        del d["agencies_dir"]
        d["agencies"] = [str(host.agency_file(P)), c2]
    edit(host.config, named)
    lines = [(lv, what) for lv, what, _ in diagnose(str(host.config), C2).lines]
    assert (PROBLEM, "agencies[1].node.data_dir") in lines
    assert (OK, "agencies[1].node.data_dir") not in lines  # a problem, not also fine
    assert (OK, "agencies[1].tls.cert") in lines  # its own identity, set in its entry
    [peer] = [(lv, what, fix) for lv, what, fix in diagnose(str(host.config), C2).lines if "peers[0]" in what]
    assert peer[1] == f"agencies[1].peers[0] {P}" and "agencies[1].peers[0].address" in peer[2]
    config = load_host(host.config)
    assert config.key_name(C2, "limits.envelopes_per_batch") == "limits.envelopes_per_batch"  # the host file's
    assert config.key_name(P, "node.data_dir") == "node.data_dir"  # in P's own file
    assert "node.data_dir" in [what for _, what, _ in diagnose(str(host.config), P).lines]
