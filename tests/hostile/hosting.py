"""A host process serving three agencies, for the hosting cases (cases_hosting.py): started the first time a
case asks for it, stopped with the world.

    000.00.41.H53  HP  a province (top), co-hosted
    ├── 000.01.41.H53  HA  a commune: the attacker's token is HA's
    └── 000.02.41.H53  HB  a commune: the victim; HP sent it a document (in HB's inbox)

Everything is in one host process: one peer port, one API port, each agency with its own token.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from node.harness import hosts, nodes
from node.harness.nodes import NodeSpec
from node.harness.waiting import wait_for_statuses
from node.pb import envelope_pb2 as pb

from .world import read_rows

HP, HA, HB = "000.00.41.H53", "000.01.41.H53", "000.02.41.H53"
HOSTED = (HP, HA, HB)
TIMEOUT = 30.0


@dataclass
class Hosting:
    handle: hosts.HostHandle
    doc_for_b: str  # the message id of HP's document in HB's inbox
    doc_id: str = ""  # that document's doc id (HP's outbox)
    http: str = ""  # the host's HTTP/JSON face, http://host:port

    def client(self, code: str):
        return self.handle.agencies[code].client(TIMEOUT)

    def rows(self, code: str) -> frozenset:
        """An agency's mailbox as a case must leave it: its audit rows and its inbox."""
        path = nodes.mailbox_path(self.handle.agencies[code].dir)
        return (read_rows(path, "SELECT 'audit', seq, event, message_id FROM audit")
                | read_rows(path, "SELECT 'in', message_id, NULL, NULL FROM inbox"))

    def stop(self) -> None:
        nodes.terminate(self.handle.agencies[HP])


def start_hosting(root: Path, ca_dir: Path) -> Hosting:
    listen = f"127.0.0.1:{nodes.free_port()}"
    http = f"127.0.0.1:{nodes.free_port()}"  # the host's HTTP/JSON face, for every agency
    fast = {"registry": {"heartbeat": "1s", "stale_after": "30s"}, "limits": {"registry_updates_per_second": 20},
            "api": {"http_listen": http}}
    specs = [NodeSpec(HP, "UBND tỉnh (host)", extra={"node": {"root": True}}),
             NodeSpec(HA, "UBND xã A (host)", peers={HP: HP}, parent=HP),
             NodeSpec(HB, "UBND xã B (host)", peers={HP: HP}, parent=HP)]
    h = hosts.prepare_host(root, ca_dir, "host", specs, {c: listen for c in HOSTED}, listen=listen, extra=fast)
    hosts.start(h)
    try:
        nodes.wait_healthy([h.agencies[c] for c in HOSTED], timeout=TIMEOUT)
        sent = h.agencies[HP].client(TIMEOUT).send(pb.Document(subject="Công văn cho xã B"), [HB])
        wait_for_statuses(h.agencies[HP].client(TIMEOUT), sent.doc_id, {HB: ["01"]}, timeout=TIMEOUT)
    except BaseException:
        print(nodes.tail(h.agencies[HP], 40))
        nodes.terminate(h.agencies[HP])
        raise
    return Hosting(h, sent.envelopes[0].message_id, sent.doc_id, f"http://{http}")
