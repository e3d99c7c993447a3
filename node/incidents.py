"""Unexpected failures: logged in full here, named to the outside only by an incident id.

A peer or client never sees internal text (it could leak paths, SQL or other agencies'
data); the operator finds the traceback in the log by the id the caller was given.
"""
from __future__ import annotations

import logging
import uuid

log = logging.getLogger("lienthong.incident")


def log_incident(what: str) -> str:
    """Log the exception being handled, under a new incident id, and return that id."""
    incident = uuid.uuid4().hex[:12]
    log.exception("incident %s: %s failed", incident, what)
    return incident
