"""The hostile world: a small tree of real node processes, and insiders holding valid certificates.

    000.00.00.H53  P   province (top)
    ├── 000.00.35.H53  D   district: the victim of most cases
    │   ├── 000.21.35.H53  C1  commune (honest)
    │   ├── 000.22.35.H53  C2  commune (honest)
    │   ├── 000.23.35.H53  M   the malicious insider: registered under D as a child, its endpoint is
    │   │                      a fake node this process serves (FakePeer) with M's own TLS identity,
    │   │                      so M also acts as a next hop (receipts, refusals) and a lookup answerer
    │   └── 000.24.35.H53  M2  a second insider child (holds the odd code vxp.held.01)
    └── 000.00.38.H53  D2  district (honest)

Outside any registration: X (000.21.38.H53) and R (000.22.38.H53), trusted certificates that are
nobody's child here; G (001.23.35.H53), an agency below M whose mail M relays.

Every node is its own OS process (node.harness.cluster); the attackers talk raw gRPC over mutual
TLS with certificates from the same CA. `snapshot` reads a node's custody tables read-only and
hashes the files of its data directory, so a case can show that nothing was stored.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import secrets
import sqlite3
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import grpc

from node import envelope, receipts
from node.edxml.common import NS as NS_EDXML  # noqa: F401 (for the cases)
from node.client import MailboxClient
from node.envelope import Signer
from node.transport.grpc_peers import TlsMaterial, open_channel
from node.harness import topology
from node.harness.cluster import Cluster
from node.identity import certs, keys, sealing
from node.pb import envelope_pb2 as pb
from node.pb import exchange_pb2 as xpb
from node.pb import exchange_pb2_grpc as xgrpc
from node.pb import registry_pb2 as rpb
from node.pb import registry_pb2_grpc as rgrpc
from node.pb import stats_pb2 as spb
from node.registry import records
from node.stats import sign as sign_stats

P, D, D2 = "000.00.00.H53", "000.00.35.H53", "000.00.38.H53"
C1, C2 = "000.21.35.H53", "000.22.35.H53"
M, M2 = "000.23.35.H53", "000.24.35.H53"
X, R = "000.21.38.H53", "000.22.38.H53"
G = "001.23.35.H53"
PRED = "000.25.35.H53"    # a commune of D's nobody registered, retired into D by D itself (the takeover cases)
HELD = "vxp.held.01"      # an odd code M2 vouches for
CONFIGURED = "vxp.conf.01"  # an odd code D's own YAML places under C1

NODES = (P, D, D2, C1, C2)
SAMPLES = Path(__file__).resolve().parents[1] / "data" / "edxml-samples"
TIMEOUT = 10.0
MAX_SIZE = 1 << 20  # D's messages.max_size, so a TOO_LARGE envelope stays cheap

TOPOLOGY = topology.parse({"name": "hostile", "nodes": [
    {"code": P, "name": "UBND tỉnh Tây Ninh", "children": [
        {"code": D, "name": "UBND thị xã Hòa Thành", "children": [
            {"code": C1, "name": "UBND xã Trường Hòa"},
            {"code": C2, "name": "UBND xã Trường Tây"}]},
        {"code": D2, "name": "UBND thị xã Trảng Bàng"}]}]})

EXTRA = {"retry": {"first_delay": "100ms", "multiplier": 2.0, "max_delay": "1s"},
         "registry": {"heartbeat": "1s", "stale_after": "30s"}}
PARKED_PER_ORIGIN = 2  # D's limits.parked_per_origin: mail for codes below D that nobody registered
UPDATES_PER_DOCUMENT = 3  # D's limits.updates_per_document: a revocation revokes them all in one commit
# D seals `preferred` (every other node: the default, `required`): the mode that still sends in clear to a
# recipient whose signed record publishes no seal key, so the cases show that nothing less makes it do so
# D's local API serves two more client programs than "default" (api.tokens), each with its own token
CLIENTS = {"qlvb": ["read", "send"], "portal": ["read", "send"], "monitor": ["read"]}
CLIENT_TOKENS = {name: secrets.token_urlsafe(32) for name in CLIENTS}
NODE_EXTRA = {D: {"messages": {"max_size": MAX_SIZE}, "parents_of": {CONFIGURED: C1},
                  "sealing": {"mode": "preferred"},
                  "api": {"tokens": [{"name": n, "token": CLIENT_TOKENS[n], "scopes": scopes}
                                     for n, scopes in CLIENTS.items()],
                          "http_listen": "127.0.0.1:0"},  # for the connection cases (cases_connections.py)
                  "limits": {"parked_per_origin": PARKED_PER_ORIGIN, "updates_per_document": UPDATES_PER_DOCUMENT,
                             # a slow refill, so the budget case runs out whatever the machine's speed; rows
                             # per heartbeat well under D's message size (a row carries its certificate)
                             "signatures_per_second": 100, "signature_burst": 4000,
                             "stats_rows_per_heartbeat": 1000,
                             # room for the catalogue's heartbeat cases (a burst of 40, honest children beat
                             # every second); 200 calls in a row pass it unless they take over 80 s
                             "registry_updates_per_second": 2, "registry_update_burst": 40},
                  "metrics": {"listen": "127.0.0.1:0"}}}  # for the connection cases too


# ---- identities ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Identity:
    """A certificate and key from the cluster's CA (or another), as an attacker holds them."""

    code: str
    signer: Signer
    key_pem: bytes
    cert_pem: bytes
    # the seal key its registry record publishes: honest senders default to sealing.mode required, and
    # hand nothing to an agency that publishes none (SEAL_KEY_MISSING)
    seal_key: sealing.SealKey | None = None

    @property
    def cert_der(self) -> bytes:
        return self.signer.cert_der

    def tls(self, anchors_pem: bytes) -> TlsMaterial:
        return TlsMaterial(self.key_pem, self.cert_pem, anchors_pem)


def issue(ca_dir: Path, where: Path, code: str, **validity) -> Identity:
    files = certs.init_node(where, code, f"agency {code}", ca_dir, force=True, **validity)
    return Identity(code, Signer.from_files(files.key, files.cert), files.key.read_bytes(), files.cert.read_bytes(),
                    sealing.SealKey.of(keys.generate_key()))


# ---- the fake node M serves --------------------------------------------------------------------

class FakePeer:
    """M's endpoint: Exchange and Registry with M's TLS identity; what it answers is set per case.

    By default it takes custody of everything with valid receipts signed by M (so mail the
    victims send M settles) and answers lookups UNAVAILABLE."""

    def __init__(self, ident: Identity, anchors_pem: bytes) -> None:
        self.ident = ident
        self.deliveries: list[bytes] = []   # every envelope handed to M, in order
        self.lookups: list[str] = []        # every code M was asked to look up
        self.on_deliver: Callable[[list[bytes]], xpb.DeliverBatchResponse] = self.receipts
        self.on_lookup: Callable[[rpb.LookupRequest, grpc.ServicerContext], rpb.LookupResponse] = self.unavailable
        self.on_children: Callable[[rpb.ChildrenRequest, grpc.ServicerContext], rpb.ChildrenResponse] = \
            lambda request, context: rpb.ChildrenResponse()
        self._cond = threading.Condition()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="fake-m"))
        xgrpc.add_ExchangeServicer_to_server(_FakeExchange(self), self.server)
        rgrpc.add_RegistryServicer_to_server(_FakeRegistry(self), self.server)
        creds = grpc.ssl_server_credentials([(ident.key_pem, ident.cert_pem)], root_certificates=anchors_pem,
                                            require_client_auth=True)
        self.port = self.server.add_secure_port("127.0.0.1:0", creds)
        self.address = f"127.0.0.1:{self.port}"
        self.server.start()

    def receipts(self, raws: list[bytes]) -> xpb.DeliverBatchResponse:
        items = [(message_id_of(r), envelope.sha256(r)) for r in raws]
        return xpb.DeliverBatchResponse(outcomes=[xpb.Outcome(receipt=rc)
                                                  for rc in receipts.issue(self.ident.signer, items)])

    @staticmethod
    def unavailable(request, context):
        context.abort(grpc.StatusCode.UNAVAILABLE, "fake M answers no lookups")

    def _delivered(self, raws: list[bytes]) -> xpb.DeliverBatchResponse:
        answer = self.on_deliver(raws)
        with self._cond:
            self.deliveries.extend(raws)
            self._cond.notify_all()
        return answer

    def _looked_up(self, request, context):
        with self._cond:
            self.lookups.append(request.code)
            self._cond.notify_all()
        return self.on_lookup(request, context)

    def delivered_ids(self) -> list[str]:
        with self._cond:
            return [message_id_of(r) for r in self.deliveries]

    def wait_deliveries(self, message_id: str, times: int, timeout: float = TIMEOUT) -> None:
        """Until M was handed `message_id` at least `times` times."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while sum(message_id_of(r) == message_id for r in self.deliveries) < times:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{message_id} not handed to M {times} times in {timeout}s")
                self._cond.wait(left)

    def reset(self) -> None:
        self.on_deliver, self.on_lookup = self.receipts, self.unavailable
        self.on_children = lambda request, context: rpb.ChildrenResponse()

    def stop(self) -> None:
        self.server.stop(0.5).wait(2)


class _FakeExchange(xgrpc.ExchangeServicer):
    def __init__(self, fake: FakePeer) -> None:
        self.fake = fake

    def DeliverBatch(self, request, context):
        return self.fake._delivered(list(request.envelopes))

    def Deliver(self, request, context):
        resp = self.fake._delivered([request.envelope])
        return resp.outcomes[0].receipt


class _FakeRegistry(rgrpc.RegistryServicer):
    def __init__(self, fake: FakePeer) -> None:
        self.fake = fake

    def Lookup(self, request, context):
        return self.fake._looked_up(request, context)

    def Children(self, request, context):
        return self.fake.on_children(request, context)


# ---- envelopes -------------------------------------------------------------------------------

def message_id_of(raw: bytes) -> str:
    try:
        return pb.Header.FromString(pb.Envelope.FromString(raw).header).message_id
    except Exception:
        return ""


def document(subject: str = "Công văn", **fields) -> pb.Payload:
    return pb.Payload(document=pb.Document(subject=subject, **fields))


def status(code: str) -> pb.Payload:
    return pb.Payload(status=pb.Status(status_code=code, description="giả"))


def seal(signer: Signer, recipient: str, payload: pb.Payload | None = None, **kw) -> tuple[pb.Header, bytes]:
    kw.setdefault("lifetime_s", 3600)
    return envelope.seal(signer, recipient, payload or document(), **kw)


def forged(raw: bytes, header_signer: Signer, edit=lambda h: None, *, payload: bytes | None = None,
           trace: Iterable[Signer] = ()) -> bytes:
    """An envelope rebuilt around an edited header, signed with a real key, with fresh relay marks."""
    env = pb.Envelope.FromString(raw)
    header = pb.Header.FromString(env.header)
    if payload is not None:
        env.payload = payload
        header.payload_sha256, header.payload_size = envelope.sha256(payload), len(payload)
    edit(header)
    env.header = header.SerializeToString()
    env.signature = header_signer.sign(env.header)
    del env.trace[:]
    for hop in trace:
        envelope.add_trace(env, hop)
    return env.SerializeToString()


def edited(raw: bytes, edit) -> bytes:
    env = pb.Envelope.FromString(raw)
    edit(env)
    return env.SerializeToString()


def relayed(raw: bytes, *hops: Signer) -> bytes:
    env = pb.Envelope.FromString(raw)
    for hop in hops:
        envelope.add_trace(env, hop)
    return env.SerializeToString()


# ---- nothing stored --------------------------------------------------------------------------

# Per custody table, the columns that identify what a node holds (not timestamps, delivery states or
# liveness, which honest background traffic changes). `audit` and `peer_state` record refusals and
# retries by design and are not compared.
TABLES = {
    "received": "SELECT message_id FROM received",
    "inbox": "SELECT message_id, ref_message_id FROM inbox",
    "outbox": "SELECT message_id, ref_message_id, coalesce(doc_id, '') FROM outbox",
    "docs": "SELECT doc_id, coalesce(ref_doc_id, '') FROM docs",
    "doc_progress": "SELECT message_id, sender, status, coalesce(pending_request, ''), state,"
                    " coalesce(changed_by, '') FROM doc_progress",
    "status_in": "SELECT status_message_id, doc_message_id FROM status_in",
    "status_out": "SELECT status_message_id, doc_message_id FROM status_out",
    "registry": "SELECT code, endpoint, hex(record), hex(signature) FROM registry",
    "odd_codes": "SELECT code, parent, via FROM odd_codes",
    "succession_lists": "SELECT issuer, number FROM succession_lists",
    "held": "SELECT message_id, held_for FROM held",
    "takeovers": "SELECT predecessor, backup_sha256 FROM takeovers",
    "subtree_stats": "SELECT via_child, code FROM subtree_stats",
    # the attackers' own: honest children hand theirs over on a schedule, in the background
    "child_checkpoint": f"SELECT code, seq, hex(head) FROM child_checkpoint WHERE code NOT IN {tuple(NODES)}",
    "child_restore": f"SELECT code, branch, seq, hex(head) FROM child_restore WHERE code NOT IN {tuple(NODES)}",
}
SQLITE_FILES = ("mailbox.sqlite3", "mailbox.sqlite3-wal", "mailbox.sqlite3-shm", "mailbox.sqlite3-journal")
# every file of a node's directory is hashed (data dir, keys, config) but these, which a running node writes
NODE_SKIP = (*SQLITE_FILES, "node.log", "node.pid", "exit_status")


@dataclass(frozen=True)
class Snapshot:
    rows: dict[str, frozenset[tuple]]   # "node/table" -> rows
    files: dict[str, str]               # path -> sha256
    audit: dict[str, int] = field(default_factory=dict)  # node -> last audit seq
    logs: dict[str, int] = field(default_factory=dict)   # node -> size of its node.log


AUDIT_BOUND = "SELECT max(length(message_id)), max(length(peer)), max(length(detail)) FROM audit WHERE seq > ?"
LOG_GROWTH = 64 << 10  # what one case may make a node log: refusals are logged, in a line each


def read_rows(db_path: Path, sql: str) -> frozenset[tuple]:
    conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        return frozenset(tuple(r) for r in conn.execute(sql))
    finally:
        conn.close()


def file_hashes(root: Path, skip: Iterable[str] = ()) -> dict[str, str]:
    skip = set(skip)
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name not in skip:
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@dataclass
class World:
    cluster: Cluster
    root: Path
    ca_dir: Path
    anchors_pem: bytes
    ids: dict[str, Identity]
    fake: FakePeer
    cli_root: Path
    docs: dict[str, str] = field(default_factory=dict)  # names of the honest documents set up for the cases
    _channels: dict[tuple[str, str], grpc.Channel] = field(default_factory=dict)
    _programs: dict[str, MailboxClient] = field(default_factory=dict)
    _hosting: object = None  # hosting.Hosting, started by the first case that asks for it

    def hosting(self):
        """The host process of the hosting cases (tests/hostile/hosting.py), started on first use."""
        if self._hosting is None:
            from .hosting import start_hosting
            self._hosting = start_hosting(self.root / "hosting", self.ca_dir)
        return self._hosting

    # ---- talking to nodes as an attacker -----------------------------------------------------

    def channel(self, who: str | Identity, at: str) -> grpc.Channel:
        ident = who if isinstance(who, Identity) else self.ids[who]
        key = (ident.cert_pem.hex()[-64:], at)
        ch = self._channels.get(key)
        if ch is None:
            ch = self._channels[key] = open_channel(ident.tls(self.anchors_pem), at, self.cluster.nodes[at].listen,
                                                    4 * MAX_SIZE)
        return ch

    def exchange(self, who: str | Identity, at: str = D) -> xgrpc.ExchangeStub:
        return xgrpc.ExchangeStub(self.channel(who, at))

    def registry(self, who: str | Identity, at: str = D) -> rgrpc.RegistryStub:
        return rgrpc.RegistryStub(self.channel(who, at))

    def api(self, code: str):
        return self.cluster.client(code)

    def program(self, name: str) -> MailboxClient:
        """D's local API as client program `name` of api.tokens (its own token)."""
        client = self._programs.get(name)
        if client is None:
            client = self._programs[name] = MailboxClient(self.cluster.nodes[D].api, CLIENT_TOKENS[name], TIMEOUT)
        return client

    def signer(self, code: str) -> Signer:
        return self.ids[code].signer

    def heartbeat(self, who: str = M, *, odd: dict[str, str] | None = None, rows=None, unsigned=(),
                  code: str | None = None, at: str = D) -> rpb.HeartbeatResponse:
        """A heartbeat from `who`, always carrying its own signed counters (so its report stays the same)."""
        own = [self.own_stats(who)] if rows is None else list(rows)
        return self.registry(who, at).Heartbeat(rpb.HeartbeatRequest(
            code=code or who, time_ms=int(time.time() * 1000), odd_codes=odd or {}, signed_stats=own,
            subtree_stats=list(unsigned)), timeout=TIMEOUT)

    def own_stats(self, who: str) -> spb.SignedStats:
        return sign_stats(self.signer(who), spb.AgencyStats(code=who, name=f"agency {who}",
                                                            as_of_ms=int(time.time() * 1000)))

    def record(self, who: str | Identity, *, parent: str = D, endpoint: str | None = None,
               previous: Signer | None = None) -> rpb.SignedRecord:
        ident = who if isinstance(who, Identity) else self.ids[who]
        return records.make(ident.signer, name=f"agency {ident.code}", level=3, parent=parent,
                            endpoint=self.fake.address if endpoint is None else endpoint,
                            now_ms=int(time.time() * 1000), previous=previous,
                            seal_key=ident.seal_key.public_der if ident.seal_key else b"")

    # ---- nothing stored ----------------------------------------------------------------------

    def db_path(self, code: str) -> Path:
        return Path(self.cluster.nodes[code].dir) / "data" / "mailbox.sqlite3"

    def snapshot(self, codes: Iterable[str] = NODES) -> Snapshot:
        rows, files, audit, logs = {}, {}, {}, {}
        for code in codes:
            for table, sql in TABLES.items():
                rows[f"{code}/{table}"] = read_rows(self.db_path(code), sql)
            node_dir = Path(self.cluster.nodes[code].dir)
            files.update(file_hashes(node_dir, NODE_SKIP))
            [(audit[code],)] = read_rows(self.db_path(code), "SELECT coalesce(max(seq), 0) FROM audit")
            logs[code] = (node_dir / "node.log").stat().st_size
        files.update(file_hashes(self.cli_root))
        return Snapshot(rows, files, audit, logs)

    def recorded_bounds(self, before: Snapshot) -> list[str]:
        """Refusals are recorded (audit, log) by design, but in bounded size whatever the attacker sent."""
        problems = []
        for code, seq in before.audit.items():
            [lengths] = read_rows(self.db_path(code), AUDIT_BOUND.replace("?", str(seq)))
            if any(n is not None and n > limit for n, limit in zip(lengths, (128, 128, 1000))):
                problems.append(f"{code}: audit rows of lengths {lengths} (id, peer, detail)")
            grown = (Path(self.cluster.nodes[code].dir) / "node.log").stat().st_size - before.logs[code]
            if grown > LOG_GROWTH:
                problems.append(f"{code}: node.log grew by {grown} bytes")
        return problems

    def rows(self, code: str, sql: str) -> frozenset[tuple]:
        return read_rows(self.db_path(code), sql)

    def close(self) -> None:
        if self._hosting is not None:
            self._hosting.stop()
            self._hosting = None
        for ch in self._channels.values():
            ch.close()
        self._channels.clear()
        for client in self._programs.values():
            client.close()
        self._programs.clear()


def unchanged(before: Snapshot, after: Snapshot, allow_ids: Iterable[str] = (),
              allow_paths: Iterable[Path] = ()) -> list[str]:
    """What changed between two snapshots that the case did not allow (empty: nothing was stored).

    A row may be added (or replaced) only if it names an allowed id (or a status about one); a file
    may be added only under an allowed path, and none may change or vanish."""
    allowed = set(allow_ids)
    # what an allowed message brings with it is allowed too: the automatic 01 about an allowed document
    # (its status row, its envelope and the `docs` row of its send) or a notice about an allowed envelope
    for table in ("status_in", "status_out", "outbox"):
        for name, rows in after.rows.items():
            if name.endswith("/" + table):
                for r in rows - before.rows.get(name, frozenset()):
                    if allowed.intersection(r[:2]):
                        allowed.update(x for x in r if x)
    problems = []
    for name, rows in after.rows.items():
        old = before.rows.get(name, frozenset())
        problems += [f"{name}: row gone {r}" for r in old - rows if not allowed.intersection(map(str, r))]
        problems += [f"{name}: row added {r}" for r in rows - old if not allowed.intersection(map(str, r))]
    paths = [str(p) for p in allow_paths]
    for path, digest in before.files.items():
        if after.files.get(path) != digest:
            problems.append(f"file changed or gone: {path}")
    for path in after.files.keys() - before.files.keys():
        if not any(path.startswith(p + "/") for p in paths):
            problems.append(f"file added: {path}")
    return problems


# ---- setting the world up ----------------------------------------------------------------------

def poll(what: str, check: Callable[[], object], timeout: float = TIMEOUT, pace: float = 0.05):
    """A bounded poll of a read (an RPC or a read-only query), paced; returns check's first truthy value."""
    deadline = time.monotonic() + timeout
    pacer = threading.Event()
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout}s")
        pacer.wait(pace)


@contextlib.contextmanager
def hostile_world(root: Path):
    cluster = Cluster(root / "cluster")
    fake = None
    world = None
    try:
        cluster.up(TOPOLOGY, extra=EXTRA, node_extra=NODE_EXTRA, quiet=True)
        ca_dir = cluster.dir / "ca"
        anchors = (ca_dir / "ca.pem").read_bytes()
        attackers = root / "attackers"
        ids = {code: issue(ca_dir, attackers / code, code) for code in (M, M2, X, R, G)}
        # the honest nodes' identities, for the test's own bookkeeping (never for an attack's signature
        # unless a case says the attacker replays what that agency signed)
        for code in NODES:
            kd = Path(cluster.nodes[code].dir) / "keys"
            ids[code] = Identity(code, Signer.from_files(kd / "node.key", kd / "node.pem"),
                                 (kd / "node.key").read_bytes(), (kd / "node.pem").read_bytes(),
                                 sealing.load_or_create(kd / "seal.key", create=False)[0])
        fake = FakePeer(ids[M], anchors)
        cli_root = root / "cli"
        cli_root.mkdir()
        world = World(cluster, root, ca_dir, anchors, ids, fake, cli_root)
        _set_up(world)
        yield world
    finally:
        if world is not None:
            world.close()
        if fake is not None:
            fake.stop()
        statuses = cluster.close()
    assert statuses == {code: 0 for code in cluster.nodes}, f"nodes did not stop cleanly: {statuses}"


def _set_up(w: World) -> None:
    """The insiders register, report, and claim what they may; honest documents are exchanged; then
    the world waits until every node's custody tables stand still."""
    # first (its pushes to C1 and C2 then weigh nothing on D's push allowance there when the cases begin): the
    # takeover cases need a predecessor of D's, an unused commune code of D's retired into D itself
    w.api(D).admin.issue_succession([PRED], D, 0, "Nghị quyết sắp xếp đơn vị hành chính cấp xã")
    w.registry(M).Register(w.record(M), timeout=TIMEOUT)
    w.registry(M2).Register(w.record(M2, endpoint="127.0.0.1:9"), timeout=TIMEOUT)
    w.heartbeat(M)
    w.heartbeat(M2, odd={HELD: M2}, rows=[])
    # honest documents: C1 → D (D received it), D → C1 (D sent it), each answered with its automatic 01
    sent = w.api(C1).send(pb.Document(subject="Quyết định gốc", document_id=f"{C1},2026/01/02,1/QĐ"), [D])
    w.docs["to_d"] = sent.envelopes[0].message_id
    sent = w.api(D).send(pb.Document(subject="Công văn gửi xã", document_id=f"{D},2026/01/02,2/CV"), [C1])
    w.docs["from_d"] = sent.envelopes[0].message_id
    w.docs["from_d_doc"] = sent.doc_id
    for sender, doc in ((C1, w.docs["to_d"]), (D, w.docs["from_d"])):
        poll(f"01 back at {sender} for {doc}", lambda: w.rows(sender, "SELECT 1 FROM status_in WHERE doc_message_id = "
                                                                      f"'{doc}' AND status_code = '01'"))
    # every hop drained, every report up the tree
    for code in NODES:
        poll(f"{code} has nothing pending", lambda: not w.rows(code, "SELECT 1 FROM outbox WHERE state = 'pending'"))
    poll("D holds everyone's counters", lambda: {(C1, C1), (C2, C2), (M, M)} <= w.rows(D, TABLES["subtree_stats"]))
    poll("P holds the district's report", lambda: {(D, D), (D, C1), (D, C2), (D, M), (D2, D2)}
         <= w.rows(P, TABLES["subtree_stats"]))
    poll("P knows M2's odd code", lambda: (HELD, M2, D) in w.rows(P, TABLES["odd_codes"]))
    for code in (C1, C2):
        poll(f"{code} holds D's succession list", lambda: (D, 1) in w.rows(code, TABLES["succession_lists"]))


V3 = b"\xa0\x03\x02\x01\x02"  # TBSCertificate.version [0] EXPLICIT INTEGER 2 (X.509 v3)


def unknown_version(cert_der: bytes) -> bytes:
    """The certificate's bytes with its version field set to 4, which no X.509 parser knows: a certificate
    that does not parse, though everything else about it is right (one byte flipped on the way)."""
    assert cert_der.count(V3) == 1
    return cert_der.replace(V3, b"\xa0\x03\x02\x01\x03")


def expired_identity(w: World, code: str) -> Identity:
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30)
    return issue(w.ca_dir, w.root / "expired" / code, code, not_before=old, days=1)


def foreign_identity(w: World, code: str) -> Identity:
    other = w.root / "foreign-ca"
    if not (other / "ca.pem").exists():
        certs.init_ca(other)
    return issue(other, w.root / "foreign" / code, code)


def second_identity(w: World, code: str) -> Identity:
    """Another certificate from the same CA for a code that already has one."""
    return issue(w.ca_dir, w.root / "second" / code, code)

