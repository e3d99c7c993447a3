"""The hostile catalogue, in one list; `python -m tests.hostile.catalogue` prints it as a markdown table.

Each case names an attack by a malicious insider (a node holding a valid certificate from the
same CA), the call it makes, and the refusal it must meet (gRPC status code and stable reason,
see docs/reasons.md); tests/hostile/test_catalogue.py runs every case against real node
processes and checks that nothing was stored.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `hostile` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = "hostile"

from . import (cases_answers, cases_audit, cases_backup, cases_clients, cases_connections,  # noqa: F401,E402
               cases_envelopes, cases_flood, cases_hosting, cases_hosting_isolation, cases_lifecycle, cases_local,
               cases_logs, cases_notices, cases_records, cases_registry, cases_retire, cases_revocation, cases_sealing,
               cases_stats, cases_successions, cases_takeover)
from .core import CATALOGUE as _DEFINED, Case  # noqa: E402

GROUPS = {
    "hijack": "Routing hijack and registration forgery",
    "lifecycle": "Lifecycle forgery",
    "jam": "One envelope jams a link",
    "internal text": "Internal errors never reach peers as text",
    "limits": "Unbounded work",
    "poisoned answers": "Poisoned answers",
    "invented stats": "Invented statistics",
    "flat trust": "Flat trust",
    "relay": "Forged relay marks",
    "cli files": "CLI file handling",
    "envelope": "Envelope checks the suite already had",
    "sealing": "Sealed payloads tampered with or moved",
    "revocation": "Forged, older and misrouted revocation lists",
    "audit": "Audit checkpoints forged, borrowed, rewritten or restored from a history never held",
    "log injection": "Outside text forging log lines or driving a terminal",
    "flood": "Stalls, floods and amplification",
    "backup": "Backups edited where they are kept",
    "clients": "Another program on the node's machine, with a token of its own",
    "connections": "Connections held open against the node's HTTP servers",
    "notices": "Non-delivery notices forged by nodes the mail never passed",
    "records": "Agency records and codes: fields out of bounds, control characters, endpoints, case twins",
    "hosting": "Agencies sharing one host: another agency's token, and peers naming agencies it does not serve",
    "succession": "Succession lists forged, issued by the wrong authority, cyclic or replayed",
    "retire": "Retiring a node into an agency that is not its successor",
    "takeover": "Taking over a predecessor's mailbox from a backup forged, edited, foreign, oversized or not drained",
}

CATALOGUE: list[Case] = sorted(_DEFINED, key=lambda c: list(GROUPS).index(c.group))  # stable within a group


def table(cases: list[Case] = CATALOGUE) -> str:
    """The catalogue as a markdown table: case, the call, gRPC status, reason."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|") or "—"
    lines = ["| # | case | call | gRPC status | reason |", "|---|---|---|---|---|"]
    group = None
    for n, c in enumerate(cases, 1):
        if c.group != group:
            group = c.group
            lines.append(f"| | **{GROUPS[group]}** | | | |")
        lines.append(f"| {n} | {cell(c.name)} | {cell(c.via)} | {cell(c.status)} | {cell(c.reason)} |")
    return "\n".join(lines)


def main() -> int:
    print(table())
    print(f"\n{len(CATALOGUE)} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
