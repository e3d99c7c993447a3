"""Unexpected failures: logged in full here, named to the outside only by a correlation id.

A peer or client never sees internal text (it could leak paths, SQL or other agencies'
data); the operator finds the traceback in the log by the id the caller was given. The
gRPC interceptor (node.interceptor) and intake's per-envelope refusals both use this.
"""
from __future__ import annotations

import logging
import uuid

log = logging.getLogger("lienthong.incident")


def log_incident(what: str, exc: BaseException | None = None) -> str:
    """Log the exception (default: the one being handled) under a new correlation id, and return the id."""
    correlation_id = uuid.uuid4().hex
    log.error("%s failed; correlation id %s", what, correlation_id, exc_info=exc if exc is not None else True)
    return correlation_id
