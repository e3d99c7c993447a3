"""One running node: its stores, exchange, local API, scheduler and two gRPC servers.

The peer server (mutual TLS) and the local API server (loopback, token) are separate
ports, so the node-to-node surface never exposes mailbox calls and vice versa.

Threading model (what runs where):

- **Main thread**: builds the node, starts it, then waits in `sigwait` for SIGTERM or
  SIGINT (blocked in every other thread, see `run`) and stops it; SIGHUP reloads the key,
  certificate and trust anchors (`Node.reload`) in this thread.
- **Peer server** (`peer-*`, PEER_WORKERS threads): Exchange.Deliver/DeliverBatch
  (intake verifies signatures outside the database lock, then commits custody under
  it) and Registry calls. A lookup or a recursive listing may call a parent or child
  over the network from this thread, holding a worker but never the database lock. A
  peer's health Watch stream holds a worker while it is open: a few places per peer and
  in all (node/peer_gate.py).
- **Local API server** (`api-*`, API_WORKERS threads): Mailbox and Stats calls. A Watch
  stream holds its worker for as long as the client listens, so at most MAX_WATCHERS
  streams are served at once (the next gets RESOURCE_EXHAUSTED); the rest of the pool
  stays free for Send, Fetch and the others.
- **HTTP/JSON face** (only with `api.http_listen`; node/api/http_server.py): `http-loop` runs
  aiohttp's event loop, and `http-*` workers (HTTP_WORKERS) call the same Mailbox and Stats
  servicer objects as the gRPC API; its Watch streams count against the same MAX_WATCHERS.
- **Send pool** (`send-<i>`, exchange/send_pool.py): at most `messages.send_workers`
  threads (8), started as needed and shared by every next hop (a host passes one pool to
  all its agencies: `send_pool`). A hop is a task, not threads: waking it queues it; a
  worker runs one attempt (exchange/hop.py) and queues the hop again while it makes
  progress, taking turns across agencies and their hops. A hop holds at most WINDOW workers
  (one while failing), an agency at most half a shared pool. An attempt claims a batch
  under the hop's own lock, delivers over the network with no lock held, and commits the
  outcome under the database lock. Stopping waits for the attempts in flight.
- **Scheduler** (APScheduler's BackgroundScheduler: one timing thread, a pool of 10
  for jobs): the sweep (expiry, and waking hops whose backoff is over), health checks,
  the registry keepalive (registration, heartbeats), the audit checkpoint (sign the chain head, hand it to
  the parent), and retry timers (`timers.py`),
  which only wake a hop (queue it in the send pool).
- **SQLite**: one writer connection behind one re-entrant lock (`store.database.Database`).
  Every transaction takes it for its own part; transactions queued for it meanwhile join
  the open SQLite transaction, each in a savepoint, and the last of them commits for all
  with one fsync (group commit, at most `store.database.MAX_GROUP`); each caller returns
  after that commit. Reads outside a
  transaction go to a pool of at most `store.database.READERS` read-only connections
  (`store.readers`) and never wait for it: WAL shows them every commit finished before
  they began; a read by the transaction's own thread stays on the writer (its own rows,
  atomic with its writes). Nothing holds the lock across a network call (a send looks
  recipients up before its transaction; a reply queued inside one does no lookup). Commit
  hooks (`tx.on_commit`: events, wake-ups) run after it is released.
- **gRPC's own threads** (C core) carry the channels to peers (`transport/grpc_peers.py`,
  one channel per peer, shared by every thread) and the servers' I/O. Every peer call goes
  through `self.transport` (node/transport/interface.py); a node on a `LocalNetwork`
  (node/transport/in_process.py) serves its peers there instead of on a port, and its calls
  run the peer's servicers in the calling thread.
- **CRL push** (`crl-push`, registry/directory.py): one short-lived thread per newer CRL taken,
  passing it to every registered child at once (futures), so the call or reload that brought it
  returns at once; a child it misses catches up on its next heartbeat.
- **On a host** (node/host/, several agencies in one process): the host owns the peer and API
  servers (PEER_WORKERS and API_WORKERS threads for all agencies; a call runs on the agency it
  names, `node.host.dispatch`), the one scheduler (each agency's jobs as `CODE/name`; a hosted
  agency's sweep, health and probe are one `CODE/tick` job) and the signals; an agency builds
  its servicers only (`start_hosted`). Calls between co-hosted agencies run in the caller's
  thread, as on a LocalNetwork. Every agency's hops are tasks on the host's one send pool.
- **Event bus** (`events.py`): publishers (any thread, after their commit) put events on
  each watcher's bounded queue; a slow watcher loses events rather than blocking them.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import signal
import time
from concurrent import futures
from pathlib import Path

import grpc
from apscheduler.schedulers.background import BackgroundScheduler
from grpc_health.v1 import health_pb2_grpc

from .api.auth import api_interceptors
from .api.clients import Clients
from .audit.checkpoints import Checkpointer, Keeper
from .api.mailbox import MailboxService
from .api.admin import AdminService
from .api.running import LastReload, running
from .client import RUNTIME_FILE
from .clock import SYSTEM, Clock
from .codes import CodeError, Hierarchy
from .config import ConfigError, Settings
from .documents.edxml_bridge import EdxmlBridge
from .envelope import stored_verifier
from .exchange.dispatcher import Dispatcher
from .exchange.hop import RetryPolicy, SendLimits
from .exchange.intake import Intake
from .exchange.late_seal import LateSealer
from .exchange.outgoing import EnvelopeMaker, Outgoing
from .exchange.routing import Router
from .exchange.send_pool import SendPool
from .exchange.service import ExchangeService, PeerIdentity
from .transport.grpc_peers import GrpcTransport, TlsMaterial, server_credentials, server_options
from .transport.in_process import InProcessTransport, LocalNetwork, LocalServer
from .transport.interface import Peer, PeerTransport
from . import descriptors, stats
from .events import EventBus
from .health import HealthMonitor
from .identity import keys, renewal
from .identity.crl_holder import CrlHolder
from .registry.successions import Successions
from .exchange.follow import MailFollows
from .identity.on_disk import IdentityOnDisk
from .identity.trust import TrustStore
from .transport.peer_check import PeerCheck
from .limits import InFlight, Places, SignatureBudget
from .peer_gate import PeerGate
from .interceptor import ErrorInterceptor
from .pb import exchange_pb2, exchange_pb2_grpc, mailbox_pb2, mailbox_pb2_grpc
from .pb import registry_pb2, registry_pb2_grpc
from .pb import admin_pb2, admin_pb2_grpc, stats_pb2_grpc
from .documents.lifecycle import Lifecycle
from .documents.successors import Successors
from .documents.origin import Origin
from .registry.directory import Directory
from .registry.service import RegistryService
from .timers import SchedulerTimer
from .store.database import Database, StoreError
from .store import audit as audit_store
from .store import peers as peers_store
from .store import client_keys, outbox
from .store import registry as registry_store
from .store import statuses as statuses_store
from .store import takeover as takeover_store
from .takeover import HandOvers, Takeovers, hand_over
from .metrics import NO_METRICS
from .reload import not_after_ms as _not_after_ms, reload as reload_config
from . import preflight, reflection_v1, sdnotify, version

log = logging.getLogger("lienthong")

PEER_WORKERS = 16
API_WORKERS = 16
MAX_WATCHERS = API_WORKERS // 2  # Watch streams each hold an API worker for their whole life
SWEEP_SECONDS = 5.0  # expiry and the restart safety net; retries have their own scheduled wake-ups
REGISTRY_TICK_SECONDS = 1.0  # registration is retried this often until the parent accepts
HEALTH_SECONDS = 5.0  # cheap: a query, and reading the key and certificate files
PROBE_SECONDS = 5.0  # how often next hops that are backing off are asked whether they are back
PROBE_LIMIT = 50
PROBE_TIMEOUT_S = 2.0


def _source(s: Settings) -> str | None:
    return str(s.source) if s.source else None


class Node:
    """One agency: its identity, mailbox, directory view, queues, lifecycle and audit chain.

    Alone (`shared` None) it is also the process: it owns its servers, scheduler and metrics, as
    `lienthong run` with one agency. `network`: serve peers and call them in this process (tests), not
    over the network. `send_pool`: the process's shared send pool (a host's); None: the node has its own.
    `shared` (node/host/shared.py): a host serves several agencies in one process; the agency then
    builds its servicers only (the host's servers dispatch to them), runs its jobs on the host's
    scheduler under ids of its own, sends on the host's send pool, and reaches peers through the
    transport the host makes for it."""

    def __init__(self, settings: Settings, clock: Clock = SYSTEM, network: LocalNetwork | None = None,
                 send_pool: SendPool | None = None, shared=None) -> None:
        self.settings = s = settings
        self.clock = clock
        self.shared = shared  # node.host.shared.Shared, or None: this node is the whole process
        self._awaiting: tuple | None = None  # (what it was for, the agencies awaiting their history): _awaiting_history
        # everything that can refuse start-up does so here, before anything is created or bound
        try:
            self.trust = TrustStore.from_files(list(s.tls.trust_anchors), clock, crl=s.tls.crl)
        except ValueError as e:
            raise ConfigError(f"{s.tls.crl}: {e}", path="tls.crl", expected="a CRL signed by a trust anchor",
                              file=_source(s)) from None
        self.signer = preflight.load_identity(s, self.trust, clock)
        self.seal_key = preflight.load_seal_key(s)
        previous_seal_keys = preflight.load_previous_seal_keys(s)
        preflight.check_parent(s)
        self.data_dir = preflight.DataDir.open(s)  # one node per data directory, until stop()
        try:
            self.db = Database(self.data_dir.mailbox)
        except StoreError as e:
            self.data_dir.release()
            raise ConfigError(f"cannot open {self.data_dir.path / preflight.MAILBOX_FILE}: {e}", path="node.data_dir",
                              expected="a writable mailbox", file=_source(s)) from None
        self.tls = TlsMaterial(
            key_pem=keys.key_pem(self.signer.key), cert_pem=Path(s.tls.cert).read_bytes(),
            anchors_pem=self.trust.anchors_pem, insecure=s.tls.insecure_plaintext,
        )
        self.bus = EventBus()
        # the CRL: tls.crl (read above), or the newer one kept from the parent; passed down to our children
        self.crl = CrlHolder(self.trust, self.data_dir.path, clock, s.tls.crl_grace, events_=self.bus)
        self.crl.load_stored()
        self.crl.on_new.append(self._crl_taken)
        self.network = network
        self.transport: PeerTransport
        if shared is not None:
            self.transport = shared.transport_for(self)
        elif network is None:
            self.transport = GrpcTransport(self.tls, s.messages.max_size, check_peer=PeerCheck(
                self.trust, s.tls.cert, s.tls.key, lambda: self.crl.number))
        else:
            self.transport = InProcessTransport(network, self.tls, self.trust, s.messages.max_size, s.node.code)
        self.local_peer: LocalServer | None = None  # our peer surface on `network`, made by start()
        self.scheduler = shared.scheduler if shared is not None else BackgroundScheduler(timezone="UTC")
        parent = self._parent_code(s)
        reg = s.registry
        self.directory = Directory(
            self.db, self.signer, self.trust, clock, name=s.node.name, configured_parents=dict(s.parents_of),
            parent=parent, parent_address=s.peer_address(parent) if parent else None,
            transport=self.transport, heartbeat_s=reg.heartbeat, stale_after_s=reg.stale_after,
            cache_ttl_s=reg.cache_ttl, events_=self.bus, previous=renewal.previous_signer(s, self.signer),
            # a neighbour that registers, beats or answers resets its backoff (the dispatcher is built below:
            # it routes through this directory)
            on_alive=lambda code, how: self.dispatcher.peer_returned(code, how), seal_key=self.seal_key.public_der,
            peer_addresses={p.code: p.address for p in s.peers}, crl=self.crl, limits=s.limits)
        # succession lists (docs/restructuring.md): kept, passed down, shown by lookups; mail follows them
        self.successions = Successions(self.db, self.trust, clock, lambda: self.directory.hierarchy, events_=self.bus)
        self.successions.load()
        self.directory.successions = self.successions
        # what each peer may make us verify, over all its calls (envelopes, heartbeats, listings)
        self.signatures = SignatureBudget(s.limits, clock.now)
        if self.directory.previous is not None:
            log.info("renewed certificate: registrations are co-signed by the previous key (%s.previous)", s.tls.key)
        self.router = Router(s.node.code, {p.code: p.address for p in s.peers},
                             parent=parent if parent and s.peer_address(parent) else None,
                             child_endpoint=self.directory.child_endpoint,
                             hierarchy_of=lambda: self.directory.hierarchy, successor_of=self.successions.successor,
                             moved_away=self.directory.moved_away)
        # sending: one way to make an envelope; per-hop senders (tasks on the send pool); the agency's sends on top
        self.limits = s.limits
        self.maker = EnvelopeMaker(self.signer, self.router, clock, lifetime_s=s.messages.lifetime,
                                   max_size=s.messages.max_size, limits=self.limits, seal_key=self.seal_key,
                                   seal_mode=s.sealing.mode, previous_seal_keys=previous_seal_keys)
        r = s.retry
        self.metrics = None  # metrics.listen null: no endpoint, nothing counted, prometheus_client never loaded
        if s.metrics.listen:  # counted here; served by this node, or by its host with an agency label
            from .metrics_prometheus import MailboxCollector, NodeMetrics
            self.metrics = NodeMetrics()
            self.metrics.collect_from(MailboxCollector(self.metrics_state))  # gauges read when scraped
        recorder = self.metrics or NO_METRICS
        self.metrics_server = None
        self.metrics_port = 0
        if send_pool is None and shared is not None:  # the one place a hosted agency gets the host's send pool
            send_pool = shared.send_pool
        self.dispatcher = Dispatcher(
            self.db, self.maker, self.trust, self.router, clock,
            self._deliver,
            RetryPolicy(r.first_delay, r.multiplier, r.max_delay, tuple(r.jitter)),
            limits=SendLimits(s.messages.batch_size, min(s.messages.max_size, 4 << 20)),
            notice_lifetime_s=s.messages.lifetime, timer=SchedulerTimer(self.scheduler, self.job_id(""), self.as_me if shared is not None else None), events_=self.bus,
            metrics=recorder, on_return=self.transport.expect, paused=lambda: self.crl.stale,
            prepare=LateSealer(self.db, self.maker, self.directory.seal_key_of),
            pool=send_pool, owner=s.node.code, workers=s.messages.send_workers)  # None: a pool of its own
        self.outgoing = Outgoing(self.db, self.maker, self.dispatcher, self.dispatcher, lookup=self.directory.lookup,
                                 seal_key_of=self.directory.seal_key_of, events_=self.bus,
                                 successor_of=self.directory.successor_of)
        self.follows = MailFollows(self.db, self.maker, self.successions, self.dispatcher, clock,
                                   successor_of=self.directory.successor_of, events_=self.bus,
                                   give_up=self.dispatcher.give_up,
                                   kept_from_claims=self.dispatcher.kept_from_claims)
        self.successions.on_new.append(self._successions_taken)
        # receiving: the documents layer decides what our own mail may say and records it
        self.lifecycle = Lifecycle(self.db, self.signer, s.node.name, self.outgoing, clock, self.limits,
                                   Origin(s.node.code, s.node.name, s.node.address or "", s.node.email or "",
                                          s.node.phone or ""),
                                   successors=Successors(self.successions.successors, lambda code, fresh: [
                                       step[1].successor for step in self.directory.successor_chain(code, fresh)],
                                       clock.now_ms),
                                   awaiting_history=self._awaiting_history)
        self.intake = Intake(self.db, self.signer, self.trust, self.router, clock, s.messages.max_size,
                             queues=self.dispatcher, local_mail=self.lifecycle, events_=self.bus, limits=self.limits,
                             signatures=self.signatures,
                             metrics=recorder, opener=self.maker.opener, pins=self.directory.pins)
        # a retired predecessor's mailbox taken over (lienthong takeover): what was sealed to it opens with our key
        self.takeovers = Takeovers(s.node.code, self.db, self.trust, clock, self.successions.successor,
                                   lambda: self.maker.seal_key, s.messages.max_size, self.data_dir.path)
        self.maker.held_wrap = lambda message_id: takeover_store.content_wrap(self.db, message_id)
        self.verify_stored = stored_verifier(self.trust, clock, opener=self.maker.opener)
        # the audit chain's signed checkpoints: ours, handed to our parent; our children's, kept here
        self.checkpoint_keeper = Keeper(self.db, self.trust, clock, self.bus)
        has_parent = bool(self.directory.parent and self.directory.parent_address)
        self.checkpointer = Checkpointer(self.db, self.signer, clock,
                                         send=self.directory.send_checkpoint if has_parent else None,
                                         events_=self.bus, parent=self.directory.parent or "")
        self.bridge = EdxmlBridge(self.db, self.outgoing, self.lifecycle, self.verify_stored, self.limits,
                                  s.messages.max_size)
        self.identity_on_disk = IdentityOnDisk(lambda: self.settings, lambda: self.trust, clock)
        self.health = HealthMonitor(self.db, self.signer, self.trust, checks=[
            self._identity_files_problem,
            self._parent_problem], peer_checks=[self.crl.stale_problem])
        self._parent_broken = False
        self.cert_not_after_ms = _not_after_ms(self.signer.cert_der)
        self.peer_server: grpc.Server | None = None
        self.api_server: grpc.Server | None = None
        self.peer_port = 0
        self.api_port = 0
        self.http_face = None  # api.http_listen: node.api.http_server.HttpFace, started with the API
        self.registry_service: RegistryService | None = None  # made by start()
        self.peer_gate: PeerGate | None = None  # made by start()
        self.started_ms = clock.now_ms()
        self.last_reload = LastReload()  # the outcome of the last SIGHUP (Admin.Running, doctor)
        self.http_port = 0

    @staticmethod
    def _parent_code(s: Settings) -> str | None:
        """node.parent if configured; else the code rule's parent, if we know its address."""
        if s.node.parent:
            return s.node.parent
        if s.node.root:
            return None
        try:
            parent = Hierarchy(dict(s.parents_of)).parent(s.node.code)
        except CodeError:
            return None
        return parent if parent and s.peer_address(parent) else None

    # ---- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        s = self.settings
        opts = server_options(s.messages.max_size)
        self.descriptors = descriptors.budget(descriptors.raise_limit())  # before anything binds or connects
        log.info("open-files limit %d: connections taken at once: %d peers, %d local API, %d HTTP",
                 *dataclasses.astuple(self.descriptors))
        self._serve_peers(opts + descriptors.server_options(self.descriptors.peer))

        self.api_server = grpc.server(futures.ThreadPoolExecutor(max_workers=API_WORKERS, thread_name_prefix="api"),
                                      interceptors=api_interceptors(Clients.of(s.api)),
                                      options=opts + descriptors.server_options(self.descriptors.api))
        services = self._add_api(self.api_server)
        self._add_common(self.api_server, mailbox_pb2.DESCRIPTOR.services_by_name["Mailbox"].full_name,
                         stats.SERVICE_NAME, admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name)
        self.api_port = self._bind("api.listen", s.api.listen, lambda: self.api_server.add_insecure_port(s.api.listen))
        if s.api.http_listen:  # the same servicer objects: one Watch cap, one set of client keys
            self._start_http(services)

        if self.metrics is not None:
            self._start_metrics()
        self.directory.endpoint = self._advertised_endpoint()
        self.health.check()
        if self.local_peer is not None:
            for address in {self.directory.endpoint, s.listen}:
                self.network.attach(address, self.local_peer)
        else:
            self.peer_server.start()
        self.api_server.start()
        self._add_jobs()
        self.scheduler.start()
        self.dispatcher.wake_all_due()
        self._write_runtime()
        log.info("node %s serving peers on port %d, local API on port %d", s.node.code, self.peer_port, self.api_port)
        log.info("lienthong %s; %s", version(), self.crl.describe())

    def _add_jobs(self) -> None:
        """The periodic work. On a host, each first run is at a random point of its interval, so a thousand
        agencies started together do not all wake in the same second (the registration starts at once)."""
        s = self.settings
        if self.shared is not None:  # one job where a node has three: a scheduler's run costs more than the work
            self._every("tick", self._tick, SWEEP_SECONDS, max_instances=1)
        else:
            self._every("sweep", self._sweep, SWEEP_SECONDS, max_instances=1)
            self._every("health", self.health.check, HEALTH_SECONDS)
            self._every("probe", self._probe_backing_off, PROBE_SECONDS, max_instances=1)
        self._every("checkpoint", self.checkpointer.tick, s.audit.checkpoint_every, max_instances=1)
        if self.directory.parent and self.directory.parent_address:  # the top of a tree registers nowhere
            self._every("registry", self._keepalive, min(REGISTRY_TICK_SECONDS, s.registry.heartbeat),
                        max_instances=1, first=0.0)

    def _every(self, name: str, job, seconds: float, first: float | None = None, **options) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        if self.shared is not None:
            job = self.as_me(job)
            if first is None:
                first = self.shared.first_run(seconds)
            # a busy host runs a late job late (coalesced into one run), rather than skipping it with a warning
            options.setdefault("misfire_grace_time", None)
        if first is not None:
            options["next_run_time"] = now + dt.timedelta(seconds=first)
        self.scheduler.add_job(job, "interval", seconds=seconds, id=self.job_id(name), coalesce=True, **options)

    def _deliver(self, code: str, address: str, envelopes: list[bytes]):
        """A hop sender's hand-over (on a host its lines name this agency: the send pool runs each attempt
        as its owner, node/exchange/send_pool.py)."""
        return self.transport.deliver(Peer(code, address), envelopes)

    def _tick(self) -> None:
        """A hosted agency's sweep, health check and probe (SWEEP_SECONDS = HEALTH_SECONDS = PROBE_SECONDS),
        each on its own: one failing does not skip the others."""
        for work in (self._sweep, self.health.check, self._probe_backing_off):
            try:
                work()
            except Exception:  # noqa: BLE001 - as APScheduler would: logged, and the next tick runs
                log.exception("periodic %s failed", getattr(work, "__name__", work))

    def job_id(self, name: str) -> str:
        """A scheduler job's id: on a host, prefixed by the agency's code (one scheduler for all of them)."""
        return f"{self.settings.node.code}/{name}" if self.shared is not None else name

    def as_me(self, job):
        """`job` run with this agency's code on its log lines (a host's shared threads run every agency's)."""
        from .logs import serving_as
        code = self.settings.node.code

        def run():
            with serving_as(code):
                return job()
        return run

    def start_hosted(self) -> None:
        """Start as one agency of a host: servicers for the host's servers to dispatch to, jobs on its
        scheduler; nothing bound, no thread of its own."""
        s = self.settings
        self._serve_peers(None)
        from .host.table import ServiceTable
        self.api_table = ServiceTable()
        self.api_services = self._add_api(self.api_table)  # the host's HTTP/JSON face calls these
        ports = self.shared.ports()
        self.peer_port, self.api_port = ports.get("listen", 0), ports.get("api", 0)
        self.directory.endpoint = s.registry.advertise or self.shared.endpoint()
        self.health.check()
        self._add_jobs()
        self.dispatcher.wake_all_due()
        self._write_runtime()
        log.info("agency %s hosted: peers and local API on the host's ports", s.node.code)

    def _add_api(self, server) -> dict:
        """The local API's servicers (Mailbox, Stats, Admin) on `server` (a gRPC server, or a host's table)."""
        s = self.settings
        mailbox = MailboxService(
            self.db, self.clock, outgoing=self.outgoing, lifecycle=self.lifecycle, bridge=self.bridge,
            directory=self.directory, bus=self.bus, verify_stored=self.verify_stored,
            watchers=(self.shared.watch_places(s.node.code) if self.shared is not None else None)
            or Places(InFlight(MAX_WATCHERS), s.node.code, MAX_WATCHERS, MAX_WATCHERS))
        mailbox_pb2_grpc.add_MailboxServicer_to_server(mailbox, server)
        stats_servicer = stats.StatsService(self.db, s.node.code, s.node.name, self.clock)
        stats_pb2_grpc.add_StatsServicer_to_server(stats_servicer, server)
        admin_pb2_grpc.add_AdminServicer_to_server(
            AdminService(self.db, self.dispatcher, self.clock, lambda: running(self), successions=self.successions,
                         issue=self._issue_succession, takeovers=self.takeovers,
                         hand_over=lambda: hand_over(self.settings, self.db, self.data_dir.mailbox, self.directory,
                                                     self.transport, self.maker.opening_keys, self.data_dir.path)),
            server)
        return {mailbox_pb2.DESCRIPTOR.services_by_name["Mailbox"].full_name: mailbox,
                stats.SERVICE_NAME: stats_servicer}

    def _serve_peers(self, opts) -> None:
        """The peer surface (Exchange, Registry, health behind PeerGate and the error interceptor): on the
        peer port over mutual TLS, or, on a LocalNetwork, to the nodes of this process only (no port)."""
        s = self.settings
        peers = PeerIdentity(self.trust, s.tls.insecure_plaintext)
        # PeerGate first: a revoked caller is refused before any servicer runs (see node/peer_gate.py)
        self.peer_gate = PeerGate(peers, self.crl.stale_problem, self.limits,
                                  watches=self.shared.health_watches if self.shared is not None else None)
        interceptors = [self.peer_gate, ErrorInterceptor()]
        exchange = ExchangeService(self.intake, peers)
        self.registry_service = RegistryService(self.directory, peers, self.limits, self.checkpoint_keeper,
                                                self.clock, self.signatures, handovers=HandOvers(
                                                    s.node.code, self.takeovers, self.successions.successor,
                                                    self.data_dir.path))

        def add_peer_services(server) -> None:  # the same servicer objects, whichever way peers reach them
            exchange_pb2_grpc.add_ExchangeServicer_to_server(exchange, server)
            registry_pb2_grpc.add_RegistryServicer_to_server(self.registry_service, server)
            health_pb2_grpc.add_HealthServicer_to_server(self.health.servicer, server)

        if self.network is not None or self.shared is not None:
            self.local_peer = LocalServer(interceptors, lambda: self.tls, self.trust, s.messages.max_size)
            add_peer_services(self.local_peer)
        else:
            self.peer_server = grpc.server(
                futures.ThreadPoolExecutor(max_workers=PEER_WORKERS, thread_name_prefix="peer"),
                interceptors=interceptors, options=opts)
            add_peer_services(self.peer_server)
            reflection_v1.enable((exchange_pb2.DESCRIPTOR.services_by_name["Exchange"].full_name,
                                  registry_pb2.DESCRIPTOR.services_by_name["Registry"].full_name,
                                  "grpc.health.v1.Health"), self.peer_server)
            if s.tls.insecure_plaintext:
                log.warning("PLAIN-TEXT node-to-node transport (tls.insecure_plaintext): for tests only, never in service")
                self.peer_port = self._bind("listen", s.listen, lambda: self.peer_server.add_insecure_port(s.listen))
            else:
                self.peer_port = self._bind("listen", s.listen, lambda: self.peer_server.add_secure_port(
                    s.listen, server_credentials(lambda: self.tls)))

    def _bind(self, key: str, address: str, bind) -> int:
        """Bind or stop start-up with an error naming the config key (gRPC raises RuntimeError)."""
        try:
            return bind()
        except RuntimeError:
            raise ConfigError(f"cannot listen on {address} (address in use or not available)", path=key,
                              expected="a free host:port on this machine", file=_source(self.settings)) from None

    def _awaiting_history(self) -> list[str]:
        """The retired agencies we answer for (the end of their chain of successors) whose mailboxes we have not
        taken over yet: statuses and changes about their documents are refused for now, not for good.

        Asked for every status or change about a document we know nothing of, inside the custody transaction: a
        peer's batch of them must not walk every succession list and read the takeovers once each. Kept while the
        lists held, the mailbox's commits and the second stay the same (a succession comes into effect at its
        time, a takeover commits)."""
        key = (tuple(sorted(self.successions.numbers().items())), self.db.commits, self.clock.now_ms() // 1000)
        if self._awaiting is not None and self._awaiting[0] == key:
            return self._awaiting[1]
        me = self.settings.node.code
        ours = {r.code for r in self.successions.all_retired() if self.successions.successor(r.code) == me}
        waiting = sorted(ours - {t.predecessor for t in takeover_store.takeovers(self.db)}) if ours else []
        self._awaiting = (key, waiting)
        return waiting

    def _parent_problem(self) -> str | None:
        return self.directory.parent_problem(int(self.settings.registry.unhealthy_after * 1000))

    def _identity_files_problem(self) -> str | None:
        """The key and certificate files are what a restart would load (mode, match, code, chain, dates);
        read again only when they or the trust store changed (node/identity/on_disk.py)."""
        return self.identity_on_disk.problem()

    def _start_http(self, services: dict) -> None:
        """The HTTP/JSON face (api.http_listen) on its own thread; aiohttp is loaded only here."""
        from .api.http_server import HttpFace
        from .api.openapi import document
        s = self.settings
        self.http_face = HttpFace(s.api.http_listen, Clients.of(s.api), services, max_message_bytes=s.messages.max_size,
                                  health_problem=lambda: self.health.problem, openapi=document,
                                  max_connections=self.descriptors.http)
        try:
            self.http_port = self.http_face.start()
        except OSError as e:
            self.http_face = None
            raise ConfigError(f"cannot listen on {s.api.http_listen} ({e.strerror or e})", path="api.http_listen",
                              expected="a free host:port on this machine", file=_source(s)) from None
        self.health.checks.append(self.http_face.problem)  # a dead event loop turns the node NOT_SERVING
        log.info("HTTP/JSON API on http://%s:%d/v1/", s.api.http_listen.rsplit(":", 1)[0], self.http_port)

    def _start_metrics(self) -> None:
        """The Prometheus endpoint (metrics.listen), on a bounded server of its own (node/metrics_server.py);
        gauges are read when scraped."""
        listen = self.settings.metrics.listen
        try:
            server = self.serve_metrics(listen)
        except OSError as e:
            raise ConfigError(f"cannot listen on {listen} ({e.strerror or e})", path="metrics.listen",
                              expected="a free host:port on this machine", file=_source(self.settings)) from None
        self.use_metrics(self.settings.metrics, server)

    def serve_metrics(self, listen: str):
        """Bind and serve the node's metrics at `listen` (at start, or a reload moving or turning them on);
        OSError if it cannot. The counters live as long as the node, wherever they are served."""
        from .metrics_prometheus import MailboxCollector, NodeMetrics
        from .metrics_server import MetricsServer
        if self.metrics is None:
            self.metrics = NodeMetrics()
            self.metrics.collect_from(MailboxCollector(self.metrics_state))
        host, port = listen.rsplit(":", 1)
        server = MetricsServer(host.strip("[]"), int(port), self.metrics.registry,
                               cache_for=lambda: self.settings.metrics.cache_for, now=self.clock.now)
        server.start()
        return server

    def use_metrics(self, settings, server) -> None:
        """Count into the metrics and serve them from `server` (None: keep the one serving, or none when
        metrics.listen is unset); a server replaced is shut down."""
        if server is not None or not settings.listen:
            if self.metrics_server is not None:
                self.metrics_server.stop()
            self.metrics_server = server
            self.metrics_port = server.port if server is not None else 0
        recorder = self.metrics if settings.listen and self.metrics is not None else NO_METRICS
        self.dispatcher.use(metrics=recorder)
        self.intake.metrics = recorder
        if self.metrics_server is not None:
            host = settings.listen.rsplit(":", 1)[0]
            log.info("metrics on http://%s:%d/metrics", host, self.metrics_port)
        if self.api_port:  # running: runtime.json names where the metrics are served now
            self._write_runtime()

    def metrics_state(self) -> dict:
        """What the metrics endpoint reads from the node when scraped (see node/metrics.py)."""
        now = self.clock.now_ms()
        states = {p.code: p for p in peers_store.all_states(self.db)}
        summary = outbox.queue_summary(self.db)
        queues = {}
        for hop in sorted(set(states) | set(summary)):
            q, st = summary.get(hop), states.get(hop)
            queues[hop] = {"depth": q["depth"] if q else 0,
                           "oldest_age_s": max(0, now - q["oldest_ms"]) / 1000 if q else 0.0,
                           "failures": st.failures if st else 0, "held": bool(st.held) if st else False,
                           "parked": q["parked"] if q else 0}
        stale = self.directory.stale_after_ms
        crl = self.crl.current
        head_seq, _ = audit_store.head(self.db)
        checkpoint = audit_store.latest_checkpoint(self.db)
        return {
            "queues": queues,
            "cert_days_left": (self.cert_not_after_ms - now) / 86_400_000,
            "children": {c.code: now - self.directory.last_seen(c) <= stale for c in registry_store.children(self.db)},
            "parent": self.directory.parent if self.directory.parent_address else None,
            "registered": self.directory.registered,
            "statuses": statuses_store.counts_by_code(self.db),
            "taken_over": takeover_store.counts(self.db),
            "serving": self.health.problem is None,
            "version": version(),
            "http_refused": self.http_face.refused_connections if self.http_face is not None else 0,
            "crl": None if crl is None else {"number": crl.number, "next_update_s": crl.next_update_ms / 1000,
                                             "age_s": max(0, now - crl.this_update_ms) / 1000},
            "checkpoint": None if checkpoint is None else {
                "age_s": max(0, now - checkpoint["time_ms"]) / 1000, "rows_after": max(0, head_seq - checkpoint["seq"])},
        }

    def _add_common(self, server: grpc.Server, *service_names: str) -> None:
        health_pb2_grpc.add_HealthServicer_to_server(self.health.servicer, server)
        reflection_v1.enable((*service_names, "grpc.health.v1.Health"), server)  # v1 and v1alpha

    def _keepalive(self) -> None:
        """Retry registration every second; once registered, wake only to send heartbeats. On a host, a few
        agencies register with one parent at once (Shared.registering); one finding no place tries on its
        next tick."""
        was = self.directory.registered
        places = self.shared.registering if self.shared is not None and not was else None
        parent = self.directory.parent or ""
        if places is not None and not places.enter(parent):
            return
        try:
            self.directory.keepalive()
        finally:
            if places is not None:
                places.leave(parent)
        broken = self._parent_problem() is not None
        if broken != self._parent_broken:  # health follows the parent link at once, not at the next check
            self._parent_broken = broken
            self.health.check()
        if self.directory.registered != was:
            beat = self.settings.registry.heartbeat
            if not self.directory.registered:
                self.scheduler.reschedule_job(self.job_id("registry"), trigger="interval",
                                              seconds=min(REGISTRY_TICK_SECONDS, beat))
                return
            # on a host the first heartbeat comes anywhere within one interval (sooner, never later): a thousand
            # agencies registered in the same few seconds would otherwise beat in those seconds forever after
            early_ms = int(self.shared.first_run(beat) * 1000) if self.shared is not None else 0
            self.directory.beat_early(early_ms)
            first = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=beat - early_ms / 1000)
            self.scheduler.reschedule_job(self.job_id("registry"), trigger="interval", seconds=beat, start_date=first)

    def _advertised_endpoint(self) -> str:
        if self.settings.registry.advertise:
            return self.settings.registry.advertise
        if self.shared is not None:
            return self.shared.endpoint()
        if self.network is not None:
            return self.settings.listen  # the address our peers find us at in this process
        host = self.settings.listen.rsplit(":", 1)[0]
        if host in ("0.0.0.0", "[::]", "::"):
            log.warning("listening on all interfaces; registering 127.0.0.1 (set registry.advertise)")
            host = "127.0.0.1"
        return f"{host}:{self.peer_port}"

    def _probe_backing_off(self) -> None:
        """Ask every next hop that is backing off with mail waiting whether it is back (gRPC health over
        mutual TLS, so the answer comes from the agency we meant): one that answers SERVING is sent to now."""
        asked = []
        for state in peers_store.backing_off(self.db)[:PROBE_LIMIT]:
            address = self.router.address(state.code)
            if address is None or state.next_attempt_ms <= self.clock.now_ms():
                continue
            asked.append(Peer(state.code, address))
        for code, serving in self.transport.probe(asked, PROBE_TIMEOUT_S).items():
            if serving is True:
                self.dispatcher.peer_returned(code, "answers health checks")

    def _crl_taken(self, crl) -> None:
        """A newer CRL is in use: pass it down, say so in health, and send what waited for a fresh one."""
        self.health.check()  # before the push: a child never says it took a list its parent does not follow yet
        self.directory.push_crl(crl.der)
        self.dispatcher.wake_all_due()

    def _successions_taken(self, signed) -> None:
        """A newer succession list is in use: pass it down, and send our mail for the codes it retires to their
        successors."""
        self.directory.push_successions([signed])
        self.follows.reroute()

    def _issue_succession(self, succession):
        before = self.follows.rerouted
        body = self.successions.issue(self.signer, succession)
        return body, self.follows.rerouted - before

    def _sweep(self) -> None:
        self.follows.due()  # a succession held came into effect since: our queued mail for it follows
        if not self.crl.stale:  # a stale CRL holds the queue: nothing is sent, nothing expired or dropped
            self.dispatcher.expire_due()
        self.dispatcher.wake_all_due()
        client_keys.prune(self.db, self.clock.now_ms())  # idempotency keys past their time (>= messages.lifetime)

    def _write_runtime(self) -> None:
        host = lambda addr: addr.rsplit(":", 1)[0]  # noqa: E731
        info = {
            "pid": os.getpid(), "code": self.settings.node.code,
            "listen": f"{host(self.settings.listen)}:{self.peer_port}",
            "api": f"{host(self.settings.api.listen)}:{self.api_port}",
        }
        if self.shared is not None:  # the host's ports: every agency's CLI finds the one API there
            info.update(self.shared.runtime())
        if self.http_face is not None:
            info["http"] = f"{host(self.settings.api.http_listen)}:{self.http_port}"
        if self.metrics_server is not None:
            info["metrics"] = f"{host(self.settings.metrics.listen)}:{self.metrics_port}"
        path = Path(self.settings.node.data_dir) / RUNTIME_FILE
        preflight.write_private(path, json.dumps(info).encode())

    def reload(self) -> bool:
        """SIGHUP: read node.yaml and the files it names again; take what can change live (node/reload.py)."""
        return reload_config(self)

    def use_limits(self, limits) -> None:
        """limits.* from a reload: every holder reads the new ones from its next request on."""
        self.limits = limits
        for holder in (self.maker, self.lifecycle, self.intake, self.bridge):
            holder.limits = limits
        # those that hold counters and buckets sized by the limits (the budget is shared by intake and registry)
        for keeper in (self.directory, self.signatures, self.registry_service, self.peer_gate):
            if keeper is not None:
                keeper.use_limits(limits)

    def register_again(self, what: str) -> None:
        """Give the parent our record again now (a new certificate or seal key after a reload)."""
        if not (self.directory.parent and self.directory.parent_address):
            return
        self.directory.registered = False
        try:
            self.scheduler.reschedule_job(self.job_id("registry"), trigger="interval",
                                          seconds=min(REGISTRY_TICK_SECONDS, self.settings.registry.heartbeat))
        except Exception:  # noqa: BLE001 - no registry job (top of a tree): nothing to hurry
            pass
        log.info("reload (SIGHUP): registering %s with %s%s", what, self.directory.parent,
                 " (co-signed by the previous key)" if self.directory.previous else "")

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, let calls in flight finish their commits, then close the database."""
        t0 = time.monotonic()
        self.health.shutdown()
        if self.shared is not None:  # the host's servers no longer dispatch to us, nor co-hosted agencies
            self.shared.detach(self)
        elif self.local_peer is not None:  # peers in this process no longer find us
            self.network.detach(self.local_peer)
        if self.local_peer is not None:  # calls already in (co-hosted agencies, the host's servers) finish first
            self.local_peer.close(grace)
        events = [srv.stop(grace) for srv in (self.peer_server, self.api_server) if srv is not None]
        if self.http_face is not None:  # meanwhile: stops accepting, ends its event streams, finishes its calls
            self.http_face.stop(grace)
        for e in events:
            e.wait(grace + 1)
        if self.shared is None:
            self.scheduler.shutdown(wait=False)
        elif self.scheduler.running:  # the host's scheduler goes on for the others (stopping: it is shut already)
            prefix = self.job_id("")
            for job in self.scheduler.get_jobs():
                if job.id.startswith(prefix):
                    job.remove()
        if self.metrics_server is not None:
            self.metrics_server.stop()
        busy = self.dispatcher.stop(timeout=grace * 2)
        if busy:  # their batches are simply sent again after a restart (the peer dedups)
            log.warning("stopping with deliveries still in flight: %s", ", ".join(busy))
        try:  # a last signed checkpoint of the chain head, so what happened since the last tick is covered too
            self.checkpointer.tick()
        except Exception as e:  # noqa: BLE001 - stopping must finish; the chain itself is intact on disk
            log.warning("no final audit checkpoint: %s", e)
        self.transport.close()
        self.db.close()
        self.data_dir.release()
        log.info("stopped in %.1fs", time.monotonic() - t0)


def _tell_systemd(problem: str | None) -> None:
    """Type=notify: READY=1 once healthy (systemd ignores it after the first), and the health as STATUS."""
    if problem is None:
        sdnotify.notify("READY=1", "STATUS=serving")
    else:
        sdnotify.notify(f"STATUS=NOT_SERVING: {problem}"[:1000])


def run(settings: Settings) -> int:
    """`lienthong run`: serve until SIGTERM or SIGINT, then stop gracefully and return 0.

    The signals are blocked in every thread (the servers' and workers' threads inherit the
    mask) and taken here with sigwait. A Python handler only runs in the main thread; when
    the kernel handed SIGTERM to one of gRPC's threads, a main thread asleep in
    Event.wait() never woke, and the node ignored SIGTERM (seen in CI: killed after 30 s)."""
    signals = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    node = Node(settings)
    os.umask(0o077)  # whatever the node creates from now on (backups, ...) is its own; Node made its files 0600
    node.start()
    node.health.on_change = _tell_systemd  # from now on: the servers are up, READY=1 means it
    _tell_systemd(node.health.problem)
    while (received := signal.sigwait(signals)) == signal.SIGHUP:
        node.reload()
    log.info("stopping node %s (%s)", settings.node.code, signal.Signals(received).name)
    sdnotify.notify("STOPPING=1", "STATUS=stopping")
    node.stop()
    return 0
