"""File descriptors: kept for the store, and a share of the rest for each server's connections.

Under systemd's default soft limit (1,024), ~1,015 idle TCP connections to the peer port (no
certificate, no TLS handshake ever started: gRPC kept each for its 120 s handshake timeout) took
every descriptor: new mutual-TLS connections, the local API and SQLite itself ("unable to open
database file") failed. So at start the soft limit is raised to the hard one (the systemd unit
raises both, LimitNOFILE), RESERVED descriptors stay for the store, the log, files and the
connections the node opens itself, and the servers share the rest: each has a connection cap
(gRPC's `grpc.max_allowed_incoming_connections`, closing a connection past it as soon as it is
accepted; the HTTP face's own), and a connection that has not finished its TLS handshake is closed
after HANDSHAKE_TIMEOUT_MS.
"""
from __future__ import annotations

import logging
import resource
from dataclasses import dataclass

log = logging.getLogger(__name__)

RESERVED = 192                 # the store (a connection per thread, WAL and shm), the log, files, outgoing channels
HANDSHAKE_TIMEOUT_MS = 10_000  # gRPC's default is 120 s: ample for an attacker to hold a descriptor each
IDLE_CONNECTION_MS = 600_000   # an authenticated peer connection carrying no call for 10 minutes is closed
MAX_STREAMS = 100              # concurrent calls on one connection
MAX_PEER_CONNECTIONS = 4096    # whatever the limit: a province has a few hundred neighbours at most
MAX_API_CONNECTIONS = 256      # local programs
CEILING = 1 << 20              # what a soft limit is raised to at most (an unlimited hard limit)


@dataclass(frozen=True)
class Budget:
    limit: int       # the soft limit the node runs with
    peer: int        # connections the peer server takes at once
    api: int         # connections the local gRPC API takes at once
    http: int        # connections the HTTP/JSON face takes at once


def raise_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = CEILING if hard == resource.RLIM_INFINITY else min(hard, CEILING)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as e:
            log.warning("cannot raise the open-files limit from %d to %d: %s", soft, target, e)
    return CEILING if soft == resource.RLIM_INFINITY else soft


PER_HOSTED_AGENCY = 16  # a host's agency: its mailbox's writer and readers (three each) and its lock file


def budget(limit: int, agencies: int = 0) -> Budget:
    """The connections each server may hold under `limit` descriptors, RESERVED kept aside (and, on a host,
    PER_HOSTED_AGENCY for each of its `agencies`)."""
    reserved = RESERVED + PER_HOSTED_AGENCY * agencies
    if agencies and limit - reserved < 64:
        log.warning("open-files limit %d leaves too little for %d agencies' mailboxes (%d kept for them): raise "
                    "LimitNOFILE", limit, agencies, reserved)
    spare = max(limit - reserved, 64)
    return Budget(limit, peer=min(MAX_PEER_CONNECTIONS, spare * 5 // 8),
                  api=max(8, min(MAX_API_CONNECTIONS, spare // 8)), http=max(8, min(MAX_API_CONNECTIONS, spare // 8)))


def server_options(connections: int) -> list[tuple[str, int]]:
    """gRPC server options bounding what connections may hold (see the module's docstring)."""
    return [("grpc.max_allowed_incoming_connections", connections),
            ("grpc.server_handshake_timeout_ms", HANDSHAKE_TIMEOUT_MS),
            ("grpc.max_connection_idle_ms", IDLE_CONNECTION_MS),
            ("grpc.max_concurrent_streams", MAX_STREAMS)]
