"""A host's HTTP/JSON face (api.http_listen in the host file): one port for every agency, as the gRPC API.

The same rules as on the host's gRPC API port (node/host/dispatch.py, `api_caller`): the token says which
agency calls, an agency's token acts on that agency only (naming another in the `Lienthong-Agency` header
is OTHER_AGENCY), the host admin names the agency it acts on there. Each agency's calls get at most half
of the face's workers (node/host/shares.py: AGENCY_BUSY past it).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import Reason, Rejected
from .dispatch import api_caller
from .shares import AgencyShares

if TYPE_CHECKING:
    from ..api.http_server import HttpFace
    from .host import Host


def host_face(host: "Host", listen: str, max_message_bytes: int, max_connections: int) -> "HttpFace":
    from ..api.http_server import HTTP_WORKERS, HttpFace
    from ..api.http_routes import SERVICES
    from ..api.openapi import document

    def caller(header: bytes | None, named: list[str]):
        node, client, refusal = api_caller(host, header or None, named)
        services = getattr(node, "api_services", None)
        if refusal is None and services is None:  # still starting, or stopped meanwhile
            refusal = Rejected(Reason.NOT_HOSTED, "this agency is not serving yet")
        if refusal is not None:
            raise refusal
        return client, services, node.settings.node.code

    def problem() -> str | None:
        for code, node in list(host.agencies.items()):
            if node.health.problem is not None:
                return f"{code}: {node.health.problem}"
        return None

    return HttpFace(listen, "-", {s.full_name: None for s in SERVICES}, max_message_bytes=max_message_bytes,
                    health_problem=problem, openapi=document, max_connections=max_connections, caller=caller,
                    shares=AgencyShares(HTTP_WORKERS, "HTTP workers", lambda: len(host.agencies)))
