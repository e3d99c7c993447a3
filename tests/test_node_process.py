"""`lienthong run` as a real OS process: ready by gRPC health, reports its ports,
stops cleanly on SIGTERM, and refuses to start (status 2, naming the key) on a bad config."""
from __future__ import annotations

import datetime as dt
import json
import signal
import socket
import subprocess
from concurrent import futures
import sys
from pathlib import Path

import grpc
import pytest
import yaml

from node import version
from node.client import probe_health
from node.harness import nodes
from node.harness.nodes import NodeSpec

A, C = "000.00.01.H53", "000.00.03.H53"
ROOT = Path(__file__).resolve().parents[1]


def refuses_connections(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def healthy(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        return probe_health(channel, timeout=2.0)


@pytest.fixture
def handle(pki, tmp_path):
    """A node whose peer port is chosen by the OS (listen port 0); only runtime.json knows it."""
    h = nodes.prepare_node(tmp_path, pki.ca, NodeSpec(A, "Sở A"), {A: "127.0.0.1:0"})
    yield h
    nodes.kill9(h)  # no-op when the test already stopped it


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_run_serves_reports_ports_and_stops_cleanly(handle, sig):
    nodes.start(handle)
    nodes.wait_healthy([handle], timeout=30)

    info = nodes.runtime_info(handle)
    assert info["pid"] == handle.pid and info["code"] == A
    assert info["api"] == handle.api
    host, port = info["listen"].rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    assert not refuses_connections(info["listen"])  # the peer port really is that one
    assert healthy(handle.api)

    if sig == signal.SIGTERM:
        status = nodes.terminate(handle)
    else:
        handle.process.send_signal(sig)
        status = handle.process.wait(20)

    assert status == 0, nodes.tail(handle)
    log = handle.log_path.read_text()
    assert f"node {A} serving peers on port {port}" in log
    assert f"lienthong {version()}; no CRL in use" in log  # what runs, and which revocation list it holds
    first = log.splitlines()[0].split()[0]  # ISO 8601 with its zone: 2026-01-01T07:00:00.123+07:00
    assert first[10] == "T" and (first.endswith("Z") or first[-6] in "+-"), first
    assert f"stopping node {A}" in log
    assert "Traceback" not in log
    assert not healthy(handle.api)
    assert refuses_connections(handle.api) and refuses_connections(info["listen"])


def run_config(path: Path, *more: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "node", "run", "--config", str(path), *more],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL)


def edited(handle: nodes.NodeHandle, edit) -> Path:
    data = yaml.safe_load(handle.config.read_text())
    edit(data)
    path = handle.dir / "bad.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def assert_refused(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("lienthong: config error: ")
    for n in needles:
        assert n in line, line


def test_bad_value_exits_2_naming_the_key(handle):
    path = edited(handle, lambda d: d.update(retry={"first_delay": "soon"}))

    proc = run_config(path)

    assert_refused(proc, str(path), "retry.first_delay")
    assert not (handle.dir / "data" / "runtime.json").exists()


def test_a_config_error_obeys_log_format_json(handle):
    """A log shipper reading stderr gets the refusal as one JSON object naming the key, like every other line."""
    path = edited(handle, lambda d: d.update(retry={"first_delay": "soon\x1b[2J"}))

    proc = run_config(path, "--log-format", "json")

    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    got = json.loads(line)
    assert (got["level"], got["logger"], got["key"]) == ("ERROR", "lienthong.config", "retry.first_delay")
    assert got["message"].startswith(f"config error: {path}: retry.first_delay") and "\x1b" not in line
    assert dt.datetime.fromisoformat(got["time"]).utcoffset() is not None


def test_certificate_for_another_code_exits_2_naming_tls_cert(handle, pki):
    other = pki.node_dir(C)
    path = edited(handle, lambda d: d["tls"].update(key=str(other / "node.key"), cert=str(other / "node.pem")))

    proc = run_config(path)

    assert_refused(proc, "tls.cert", C, A)


def test_key_not_matching_certificate_exits_2_naming_tls_key(handle, pki):
    path = edited(handle, lambda d: d["tls"].update(key=str(pki.node_dir(C) / "node.key")))

    proc = run_config(path)

    assert_refused(proc, "tls.key", "does not match")


@pytest.mark.parametrize("key", ["listen", "api.listen"])
def test_address_in_use_is_one_line_naming_the_key(pki, tmp_path, key):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        h = nodes.prepare_node(tmp_path, pki.ca, NodeSpec(A, "Sở A"), {A: "127.0.0.1:0"})
        path = edited(h, lambda d: d["api"].update(listen=address) if key == "api.listen" else d.update(listen=address))

        proc = run_config(path)

    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    ours = [line for line in proc.stderr.splitlines() if line.startswith("lienthong: ")]
    assert len(ours) == 1 and key in ours[0] and address in ours[0], proc.stderr


@pytest.mark.parametrize("key", ["listen", "api.listen"])
def test_a_port_held_by_another_grpc_server_is_refused_not_shared(pki, tmp_path, key):
    """gRPC binds with SO_REUSEPORT by default: without turning it off, a node started on the port of a
    running gRPC server (another node, or any program) shared its connections instead of failing."""
    taken = grpc.server(futures.ThreadPoolExecutor(max_workers=1))  # default options, as other programs bind
    port = taken.add_insecure_port("127.0.0.1:0")
    taken.start()
    try:
        address = f"127.0.0.1:{port}"
        h = nodes.prepare_node(tmp_path, pki.ca, NodeSpec(A, "Sở A"), {A: "127.0.0.1:0"})
        path = edited(h, lambda d: d["api"].update(listen=address) if key == "api.listen" else d.update(listen=address))

        proc = run_config(path)
    finally:
        taken.stop(None)

    assert proc.returncode != 0
    ours = [line for line in proc.stderr.splitlines() if line.startswith("lienthong: ")]
    assert len(ours) == 1 and key in ours[0] and address in ours[0], proc.stderr
