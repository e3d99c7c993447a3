"""Prepare a host serving several agencies: one host file, one agency file each (node/host/).

`prepare_host` writes root/<name>/host.yaml (process-wide keys) and root/<name>/agencies/<code>.yaml
(identity, token, peers) with keys and certificates under root/<name>/<code>/; each agency's handle
talks to the host's one API port with that agency's token. `start` runs it as its own OS process.
"""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..identity import certs
from .nodes import NodeHandle, NodeSpec, free_port


@dataclass
class HostHandle:
    name: str
    dir: Path
    config: Path
    listen: str
    api: str
    agencies: dict[str, NodeHandle] = field(default_factory=dict)
    admin_token: str = ""
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    def agency_file(self, code: str) -> Path:
        return self.dir / "agencies" / f"{code}.yaml"


def prepare_host(root: Path, ca_dir: Path, name: str, specs: list[NodeSpec], addresses: dict[str, str], *,
                 listen: str | None = None, extra: dict | None = None, write: list[str] | None = None) -> HostHandle:
    """`addresses`: code -> address for every agency of the test (the hosted ones at the host's listen);
    `write`: the codes whose agency file is written now (default: all; the others can be added later
    with `write_agency`, e.g. before a SIGHUP)."""
    d = root / name
    (d / "agencies").mkdir(parents=True, exist_ok=True)
    listen = listen or f"127.0.0.1:{free_port()}"
    api = f"127.0.0.1:{free_port()}"
    admin = secrets.token_urlsafe(32)
    (d / "admin.token").write_text(admin)
    os.chmod(d / "admin.token", 0o600)
    config = {"listen": listen, "tls": {"trust_anchors": [str(ca_dir / "ca.pem")]},
              "api": {"listen": api}, "agencies_dir": "agencies", "host": {"admin_token_file": "admin.token"},
              "log_level": "INFO"}
    for k, v in (extra or {}).items():
        config[k] = {**config.get(k, {}), **v} if isinstance(v, dict) and isinstance(config.get(k), dict) else v
    (d / "host.yaml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    handle = HostHandle(name, d, d / "host.yaml", listen, api, admin_token=admin)
    for spec in specs:
        handle.agencies[spec.code] = agency_handle(handle, ca_dir, spec, addresses,
                                                   write=write is None or spec.code in write)
    return handle


def agency_handle(host: HostHandle, ca_dir: Path, spec: NodeSpec, addresses: dict[str, str], *,
                  write: bool = True) -> NodeHandle:
    """Keys and certificate for `spec` under the host's directory; its agency file written if `write`."""
    d = host.dir / spec.code
    keys_dir = d / "keys"
    if not (keys_dir / "node.pem").exists():
        certs.init_node(keys_dir, spec.code, spec.name, ca_dir)
    token = secrets.token_urlsafe(32)
    agency = {"node": {"code": spec.code, "name": spec.name, "data_dir": str(d / "data")},
              "tls": {"key": str(keys_dir / "node.key"), "cert": str(keys_dir / "node.pem")},
              "api": {"token": token},
              "peers": [{"code": c, "address": addresses.get(a, a)} for c, a in spec.peers.items()]}
    if spec.parent:
        agency["node"]["parent"] = spec.parent
    for k, v in spec.extra.items():
        agency[k] = {**agency.get(k, {}), **v} if isinstance(v, dict) and isinstance(agency.get(k), dict) else v
    handle = NodeHandle(spec.code, d, host.config, host.listen, host.api, token)
    handle.agency_yaml = yaml.safe_dump(agency, allow_unicode=True, sort_keys=False)  # type: ignore[attr-defined]
    if write:
        write_agency(host, handle)
    return handle


def write_agency(host: HostHandle, handle: NodeHandle) -> Path:
    path = host.agency_file(handle.code)
    path.write_text(handle.agency_yaml)  # type: ignore[attr-defined]
    return path


def start(host: HostHandle, python: str = sys.executable) -> None:
    host.log_path = host.dir / "host.log"
    log = open(host.log_path, "ab")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    host.process = subprocess.Popen(
        [python, "-m", "node", "run", "--config", str(host.config)], stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, env=env, cwd=str(Path(__file__).resolve().parents[2]), start_new_session=True)
    log.close()
    for h in host.agencies.values():
        h.process = host.process
        h.log_path = host.log_path


def wait_agency_status(host: HostHandle, code: str, status: str, timeout: float = 60.0) -> None:
    """Block until the host's health names `code` with `status` (SERVING, or SERVICE_UNKNOWN once removed):
    a Watch stream on the host's API, so it returns as soon as the host changes it (a SIGHUP done)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    want = health_pb2.HealthCheckResponse.ServingStatus.Value(status)
    with grpc.insecure_channel(host.api) as channel:
        stream = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=code),
                                                           timeout=timeout)
        for answer in stream:
            if answer.status == want:
                stream.cancel()
                return
    raise TimeoutError(f"{code} not {status} on host {host.name}")
