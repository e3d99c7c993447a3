"""The host: one process serving any number of agencies.

The host owns what is per process: one peer server (mutual TLS; every agency's key and certificate
on the one port, gRPC choosing by the SNI name the caller asks for), one local API server, one
scheduler, signals and systemd. Each agency (node.runtime.Node, started with `start_hosted`) owns
its identity, mailbox, directory view, queues, lifecycle, audit chain and tokens, and receives the
host's shared parts through one `Shared` (node/host/shared.py).

Services start in order (agencies, then the servers, then the scheduler) and stop in reverse, each
named in the log. Threads: PEER_WORKERS + API_WORKERS workers and the scheduler's, whatever the number
of agencies; each agency's hop senders are still its own (branch hoppool moves them to a shared pool).

What one idle agency costs the host: its SQLite connections (the writer, readers opened as needed:
three descriptors each, and its data directory's lock), three periodic jobs on the shared scheduler
(`CODE/tick` every 5 s: sweep, health, probe; `CODE/registry`: keepalive and heartbeats; `CODE/checkpoint`),
each first run at a random point of its interval. Measured (node/harness/host_bench.py, docs/hosting.md):
100 idle agencies in 188 MiB, 21 threads, 714 descriptors.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import signal
import threading
import time
from concurrent import futures

import grpc
from apscheduler.schedulers.background import BackgroundScheduler
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .. import descriptors, sdnotify
from ..clock import SYSTEM, Clock
from ..config import ConfigError
from ..exchange.dispatcher import shared_send_pool
from ..health import HealthServicer
from ..limits import InFlight
from ..logs import serving_as
from ..peer_gate import HEALTH_WATCHES
from ..runtime import API_WORKERS, MAX_WATCHERS, PEER_WORKERS, Node
from ..transport.grpc_peers import GrpcTransport, server_options
from ..transport.in_process import InProcessTransport
from ..transport.peer_check import PeerCheck
from .config import HostConfig, load_host
from .dispatch import HOST_ADMIN, ApiDispatch, PeerDispatch, digest
from .shared import Shared
from .shares import AgencyShares
from .transport import HostedTransport, HostNetwork

log = logging.getLogger("lienthong.host")

HEALTH_SECONDS = 5.0
STOPPING_AT_ONCE = 8  # agencies stopped side by side at the end (each: its senders, a last checkpoint, its mailbox)


class Host:
    def __init__(self, config: HostConfig, clock: Clock = SYSTEM) -> None:
        self.config = config
        self.clock = clock
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self.network = HostNetwork()
        self.agencies: dict[str, Node] = {}
        self._tokens: dict[bytes, tuple[str | None, object]] = {}
        self._lock = threading.Lock()  # agencies added or removed (SIGHUP) against each other
        self.peer_server: grpc.Server | None = None
        self.api_server: grpc.Server | None = None
        self.peer_port = self.api_port = self.metrics_port = 0
        self.metrics_server = None
        self.http_face = None  # api.http_listen: node/host/http.py
        self.http_port = 0
        self.health = HealthServicer()
        self._health_lock = threading.Lock()  # orders a removal's SERVICE_UNKNOWN after a health tick's statuses
        serving = lambda: len(self.agencies)  # noqa: E731 - one agency shares with nobody
        self.api_shares = AgencyShares(API_WORKERS, "API workers", serving)  # each agency: half the workers at most
        self.peer_shares = AgencyShares(PEER_WORKERS, "peer workers", serving)
        self.shared = Shared(scheduler=self.scheduler, transport_for=self._transport_for, endpoint=self._endpoint,
                             ports=lambda: {"listen": self.peer_port, "api": self.api_port},
                             runtime=self._runtime, detach=self._detach,
                             watchers=InFlight(MAX_WATCHERS), watchers_total=MAX_WATCHERS,
                             send_pool=shared_send_pool(config.process.messages.send_workers),
                             health_watches=InFlight(HEALTH_WATCHES))

    # ---- what agencies receive -------------------------------------------------

    def _transport_for(self, node: Node) -> HostedTransport:
        s = node.settings
        local = InProcessTransport(self.network, node.tls, node.trust, s.messages.max_size, s.node.code)
        remote = GrpcTransport(node.tls, s.messages.max_size, check_peer=PeerCheck(
            node.trust, s.tls.cert, s.tls.key, lambda: node.crl.number))
        return HostedTransport(local, remote, self.network)

    def _endpoint(self) -> str:
        """Where peers reach every agency of this host: the host file's registry.advertise, else listen."""
        if self.config.advertise:
            return self.config.advertise
        s = self.config.process
        host = s.listen.rsplit(":", 1)[0]
        if host in ("0.0.0.0", "[::]", "::"):
            host = "127.0.0.1"
        return f"{host}:{self.peer_port}"

    def _runtime(self) -> dict:
        s = self.config.process
        host = lambda addr: addr.rsplit(":", 1)[0]  # noqa: E731
        info = {"listen": f"{host(s.listen)}:{self.peer_port}", "api": f"{host(s.api.listen)}:{self.api_port}",
                "host_pid": os.getpid()}
        if self.http_face is not None:
            info["http"] = f"{host(s.api.http_listen)}:{self.http_port}"
        if self.metrics_server is not None:
            info["metrics"] = f"{host(s.metrics.listen)}:{self.metrics_port}"
        return info

    def _detach(self, node: Node) -> None:
        code = node.settings.node.code
        with self._lock:
            if self.agencies.get(code) is node:
                del self.agencies[code]
            self.network.detach(code)
            self._tokens = {d: w for d, w in self._tokens.items() if w[0] != code}
        with self._health_lock:
            self.health.set(code, health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)  # health Watch on it ends here

    def caller(self, header: str | bytes) -> tuple[str | None, object] | None:
        """(agency code, client) for an `authorization` header; (None, host admin); None: unknown."""
        return self._tokens.get(digest(header))

    def any_api_table(self):
        for node in list(self.agencies.values()):
            return getattr(node, "api_table", None)
        return None

    # ---- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        s = self.config.process
        self.descriptors = descriptors.budget(descriptors.raise_limit(), agencies=len(self.config.agencies))
        t0 = time.monotonic()
        try:
            for settings in self.config.agencies:
                node = Node(settings, self.clock, shared=self.shared)
                self.agencies[settings.node.code] = node
            self._serve()
            for node in list(self.agencies.values()):
                self._start_agency(node)
            self._index_tokens()  # once for all: per agency, a thousand agencies indexed half a million tokens
        except BaseException:
            self.stop(grace=0)
            raise
        self.peer_server.start()
        log.info("service peer-server started on port %d", self.peer_port)
        self.api_server.start()
        log.info("service api-server started on port %d", self.api_port)
        self.scheduler.add_job(self._health, "interval", seconds=HEALTH_SECONDS, id="host/health", coalesce=True)
        self.scheduler.start()
        log.info("service scheduler started")
        self._health()
        log.info("host serving %d agencies (peers on port %d, local API on port %d) in %.1fs",
                 len(self.agencies), self.peer_port, self.api_port, time.monotonic() - t0)

    def _start_agency(self, node: Node) -> None:
        """Its servicers built and reachable by its peers; its tokens are indexed by the caller, once for all."""
        code = node.settings.node.code
        node.start_hosted()
        with self._lock:
            self.agencies[code] = node
            self.network.attach(code, node.local_peer)
        log.info("service agency %s started", code)

    def _index_tokens(self) -> None:
        """Every token the API takes, by the SHA-256 of its `authorization` header: one dict lookup per call,
        however many agencies (and their clients) the host serves."""
        tokens: dict[bytes, tuple[str | None, object]] = {}
        if self.config.admin_token:
            tokens[digest(f"Bearer {self.config.admin_token}")] = (None, HOST_ADMIN)
        with self._lock:
            for code, node in self.agencies.items():
                if node.local_peer is None:  # not started yet
                    continue
                for header, client in _clients(node).entries():
                    tokens[digest(header)] = (code, client)
            self._tokens = tokens

    def _serve(self) -> None:
        s = self.config.process
        opts = server_options(s.messages.max_size)
        self.peer_server = grpc.server(futures.ThreadPoolExecutor(max_workers=PEER_WORKERS, thread_name_prefix="peer"),
                                       handlers=[PeerDispatch(self)],
                                       options=opts + descriptors.server_options(self.descriptors.peer))
        self.peer_port = self._bind("listen", s.listen, lambda: self.peer_server.add_secure_port(
            s.listen, self._credentials()))
        self.api_server = grpc.server(futures.ThreadPoolExecutor(max_workers=API_WORKERS, thread_name_prefix="api"),
                                      handlers=[ApiDispatch(self)],
                                      options=opts + descriptors.server_options(self.descriptors.api))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.api_server)
        self.api_port = self._bind("api.listen", s.api.listen, lambda: self.api_server.add_insecure_port(s.api.listen))
        if s.api.http_listen:
            self._serve_http(s)
        if s.metrics.listen:
            self._serve_metrics(s.metrics.listen)

    def _serve_http(self, s) -> None:
        """The HTTP/JSON face for every agency (node/host/http.py), bound now, serving once started."""
        from .http import host_face
        self.http_face = host_face(self, s.api.http_listen, s.messages.max_size, self.descriptors.http)
        try:
            self.http_port = self.http_face.start()
        except OSError as e:
            self.http_face = None
            raise ConfigError(f"cannot listen on {s.api.http_listen} ({e.strerror or e})", path="api.http_listen",
                              expected="a free host:port on this machine",
                              file=str(self.config.source) if self.config.source else None) from None
        log.info("service http started on port %d", self.http_port)

    def _serve_metrics(self, listen: str) -> None:
        """One endpoint for the host: every agency's series with its `agency` label (metrics_prometheus)."""
        from prometheus_client import CollectorRegistry

        from ..metrics_prometheus import HostCollector
        from ..metrics_server import MetricsServer
        registry = CollectorRegistry(auto_describe=False)
        registry.register(HostCollector(lambda: [(c, n.metrics) for c, n in list(self.agencies.items())
                                                 if n.metrics is not None]))
        host, port = listen.rsplit(":", 1)
        try:
            self.metrics_server = MetricsServer(host.strip("[]"), int(port), registry)
        except OSError as e:
            raise ConfigError(f"cannot listen on {listen} ({e.strerror or e})", path="metrics.listen",
                              expected="a free host:port on this machine",
                              file=str(self.config.source) if self.config.source else None) from None
        self.metrics_server.start()
        self.metrics_port = self.metrics_server.port
        log.info("service metrics started on port %d", self.metrics_port)

    def _credentials(self) -> grpc.ServerCredentials:
        """Every hosted agency's key and certificate on the one port; each handshake asks whether the set
        changed (an agency added, removed or given a new certificate): only then is a new one built."""
        def pairs():
            return tuple(n.tls for n in self.agencies.values())

        def config(tlss):
            return grpc.ssl_server_certificate_configuration(
                [(t.key_pem, t.cert_pem) for t in tlss], root_certificates=tlss[0].anchors_pem)

        served = [pairs()]

        def fetch():
            now = pairs()
            if now == served[0] or not now:
                return None
            served[0] = now
            return config(now)
        return grpc.dynamic_ssl_server_credentials(config(served[0]), fetch, require_client_authentication=True)

    def _bind(self, key: str, address: str, bind) -> int:
        try:
            return bind()
        except RuntimeError:
            raise ConfigError(f"cannot listen on {address} (address in use or not available)", path=key,
                              expected="a free host:port on this machine",
                              file=str(self.config.source) if self.config.source else None) from None

    def _health(self) -> None:
        """The API port's health: "" SERVING when every agency is; each agency by its code."""
        serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
        ok = True
        with self._health_lock:
            for code, node in list(self.agencies.items()):
                up = node.health.problem is None  # read once: the agency's own job may change it meanwhile
                ok = ok and up
                self.health.set(code, serving if up else not_serving)  # sent to watchers only when changed
            self.health.set("", serving if ok else not_serving)

    def reload(self) -> bool:
        """SIGHUP: read the host file and agency files again. A new agency starts (registers, takes mail),
        a removed one stops (its certificate no longer served, calls to it NOT_HOSTED; its data kept), a
        changed one follows node/reload.py for that agency."""
        from ..reload import reload as reload_agency
        try:
            new = load_host(self.config.source)
        except ConfigError as e:
            log.error("reload refused, keeping every agency as it runs: %s", e)
            return False
        before = set(self.agencies)
        after = {s.node.code: s for s in new.agencies}
        self.config = dataclasses.replace(self.config, agencies=new.agencies, files=new.files,
                                          admin_token=new.admin_token)
        ok = True
        for code in sorted(before - set(after)):
            log.info("reload (SIGHUP): agency %s removed: stopping it (its data directory is kept)", code)
            self.agencies[code].stop(grace=1.0)
        for code in [c for c in after if c not in before]:
            try:
                node = Node(after[code], self.clock, shared=self.shared)
                self.agencies[code] = node
                self._start_agency(node)
                log.info("reload (SIGHUP): agency %s added", code)
            except ConfigError as e:
                ok = False
                self.agencies.pop(code, None)
                log.error("reload (SIGHUP): agency %s not started: %s", code, e)
        for code in sorted(before & set(after)):
            with serving_as(code):
                ok = reload_agency(self.agencies[code], after[code]) and ok
        self._index_tokens()  # the host admin token may have changed too
        self._health()
        return ok

    def stop(self, grace: float = 5.0) -> None:
        t0 = time.monotonic()
        for server, name in ((self.peer_server, "peer-server"), (self.api_server, "api-server")):
            if server is not None:
                server.stop(grace).wait(grace + 1)
                log.info("service %s stopped", name)
        if self.http_face is not None:
            self.http_face.stop(grace)
            log.info("service http stopped")
        if self.scheduler.running:  # first: no agency's periodic work competes with the stopping
            self.scheduler.shutdown(wait=False)
        # the agencies side by side (a few at once): one by one, a thousand would take minutes to stop
        with futures.ThreadPoolExecutor(max_workers=STOPPING_AT_ONCE, thread_name_prefix="stop") as pool:
            for code, done in [(code, pool.submit(_stop_one, node, grace))
                               for code, node in reversed(list(self.agencies.items()))]:
                done.result()
        busy = self.shared.send_pool.stop(timeout=grace * 2)  # every agency's senders stopped their hops first
        if busy:
            log.warning("stopping with deliveries still in flight: %s", ", ".join(busy))
        if self.metrics_server is not None:
            self.metrics_server.stop()
        log.info("host stopped in %.1fs", time.monotonic() - t0)


def _stop_one(node: Node, grace: float) -> None:
    code = node.settings.node.code
    with serving_as(code):
        try:
            node.stop(grace)
        except Exception:  # noqa: BLE001 - the others must still stop (and close their mailboxes)
            log.exception("agency %s did not stop cleanly", code)
            return
    log.info("service agency %s stopped", code)


def _clients(node: Node):
    from ..api.clients import Clients
    return Clients.of(node.settings.api)


def run(config: HostConfig) -> int:
    """`lienthong run` on a host file naming several agencies (one agency: node.runtime.run, as before)."""
    signals = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    os.umask(0o077)
    host = Host(config)
    host.start()
    sdnotify.notify("READY=1", "STATUS=serving")
    while (received := signal.sigwait(signals)) == signal.SIGHUP:
        sdnotify.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
        ok = host.reload()
        sdnotify.notify("READY=1", "STATUS=reloaded" if ok else "STATUS=reload refused in part: see the log")
    log.info("stopping host (%s)", signal.Signals(received).name)
    sdnotify.notify("STOPPING=1", "STATUS=stopping")
    host.stop()
    return 0
