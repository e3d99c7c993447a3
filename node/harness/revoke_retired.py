"""The end of a merger run: the retired nodes' certificates revoked, as the CA's operator does it.

The harness made the cluster's CA (node.harness.cluster), so once each retired node says drained (`lienthong retire
--status`) it plays the CA's operator with the commands docs/restructuring.md gives, each a real process: `lienthong
ca revoke <its certificate> --ca CA --reason cessation_of_operation`, then `lienthong ca crl --ca CA`; the CRL is
installed at the root (its `tls.crl`) and the root reloaded (SIGHUP). Then it checks that the CRL reached every node
still in service (each one's Watch reports `crl` with the new number; a retired node, revoked, gets no push: its
parent will not hand anything to a revoked certificate), and that a peer call made with a retired node's certificate
is refused (CERT_REVOKED) by the root and by its successor."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml
from cryptography import x509

from ..pb import registry_pb2 as rpb
from ..transport.grpc_peers import GrpcTransport, TlsMaterial
from ..transport.interface import Peer, TransportError
from .cluster import Cluster
from .waiting import EventWaiter

ROOT_DIR = Path(__file__).resolve().parents[2]
CALL_TIMEOUT_S = 10.0


def lienthong(*argv: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "node", *argv], capture_output=True, text=True, cwd=ROOT_DIR,
                          timeout=timeout)


def revoke(cluster: Cluster, root: str, drained: list[str], successor: dict[str, str], in_service: list[str],
           timeout: float) -> dict:
    """Revoke `drained`, publish the CRL at `root`, and check it: {"crl_number", "crl_reached" (of `in_service`),
    "crl_missing", per code {"revoked", "refused_by_root", "refused_by_successor"}}."""
    ca = cluster.dir / "ca"
    out: dict = {"codes": {}}
    for code in drained:
        done = lienthong("ca", "revoke", str(Path(cluster.nodes[code].dir) / "keys" / "node.pem"), "--ca", str(ca),
                         "--reason", "cessation_of_operation")
        out["codes"][code] = {"revoked": done.returncode == 0 or done.stderr.strip()[-200:]}
    if not drained:
        return out
    made = lienthong("ca", "crl", "--ca", str(ca))
    if made.returncode != 0:
        out["crl_error"] = made.stderr.strip()[-300:]
        return out
    crl_path = ca / "ca.crl"
    number = x509.load_pem_x509_crl(crl_path.read_bytes()).extensions.get_extension_for_class(x509.CRLNumber)\
        .value.crl_number
    out["crl_number"] = number
    with contextlib.ExitStack() as stack:
        waiters = {code: stack.enter_context(EventWaiter(cluster.client(code), inbox=False, sent=False,
                                                         registry=True)) for code in in_service}
        _install(cluster, root, crl_path)
        reached, missing = [], []
        for code, w in waiters.items():
            try:
                w.wait(lambda evs: any(e.type == "crl" and e.crl_number >= number for e in evs), timeout)
                reached.append(code)
            except TimeoutError:
                missing.append(code)
    out["crl_reached"], out["crl_missing"] = len(reached), missing
    anchors = (ca / "ca.pem").read_bytes()
    for code in drained:
        keys = Path(cluster.nodes[code].dir) / "keys"
        tls = TlsMaterial((keys / "node.key").read_bytes(), (keys / "node.pem").read_bytes(), anchors)
        out["codes"][code]["refused_by_root"] = _peer_call(tls, root, cluster.nodes[root].listen)
        to = successor[code]
        out["codes"][code]["refused_by_successor"] = _peer_call(tls, to, cluster.nodes[to].listen)
    return out


def _install(cluster: Cluster, root: str, crl: Path) -> None:
    """The root's `tls.crl` names the CRL; SIGHUP: the root takes it and pushes it down."""
    n = cluster.nodes[root]
    config = yaml.safe_load(Path(n.config).read_text())
    config.setdefault("tls", {})["crl"] = str(crl)
    Path(n.config).write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    cluster.reload()
    os.kill(cluster.nodes[root].pid, signal.SIGHUP)


def _peer_call(tls: TlsMaterial, code: str, address: str) -> str:
    """A registry lookup on `code`'s peer server with the retired node's certificate, through the transport every
    peer call takes: the refusal's reason ("OK" if it was answered)."""
    transport = GrpcTransport(tls, 1 << 20)
    try:
        transport.lookup(Peer(code, address), rpb.LookupRequest(code=code), timeout=CALL_TIMEOUT_S)
        return "OK"
    except TransportError as e:
        return e.refused.reason.value if e.refused is not None else e.what
    finally:
        transport.close()
