"""`lienthong stats`: delivery and status-reporting statistics from a running node.

An agency "meets the >= N bar" when it has returned at least N distinct status codes;
the ≥3 % / ≥5 % columns are the shares of its received documents answered with at
least 3 / 5 distinct statuses (definitions in `node.stats`).
"""
from __future__ import annotations

import argparse

from google.protobuf import json_format

from .config_location import HELP as CONFIG_HELP
from .pb import stats_pb2 as spb
from .terminal import shown, shown_json

NAME_WIDTH = 32


def fetch(args) -> spb.StatsResponse:
    """Ask the node's local API (raises grpc.RpcError / ConfigError for `lienthong.cli.main` to report)."""
    from .client import MailboxClient
    from .host.config import settings_for
    from .pb import stats_pb2_grpc as sgrpc

    client = MailboxClient.for_settings(settings_for(args.config, getattr(args, "agency", None)))
    args._address = client.address
    try:
        return sgrpc.StatsStub(client.channel).Get(spb.StatsRequest(subtree=args.subtree),
                                                   metadata=client.metadata, timeout=client.timeout)
    finally:
        client.close()


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}" if whole else "-"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(resp: spb.StatsResponse) -> str:
    lines = [f"{'CODE':15}  {'NAME':{NAME_WIDTH}}  {'SENT':>7}  {'RECEIVED':>8}  {'STATUSES':>8}  "
             f"{'≥3 %':>6}  {'≥5 %':>6}  {'CODES':>5}  MEETS 3/5"]
    for a in resp.agencies:
        lines.append(
            f"{shown(a.code):15}  {_clip(shown(a.name), NAME_WIDTH):{NAME_WIDTH}}  {a.docs_sent:>7}  "
            f"{a.docs_received:>8}  "
            f"{a.statuses_sent:>8}  {_pct(a.docs_answered_3, a.docs_received):>6}  "
            f"{_pct(a.docs_answered_5, a.docs_received):>6}  {a.distinct_codes_returned:>5}  "
            f"{_yes(a.distinct_codes_returned >= 3)}/{_yes(a.distinct_codes_returned >= 5)}")
    lines.append(format_summary(resp.summary))
    if resp.not_reported:
        lines.append(f"not reported ({len(resp.not_reported)}): {', '.join(map(shown, resp.not_reported))}")
    return "\n".join(lines)


def format_summary(s: spb.StatsSummary) -> str:
    n = s.agencies
    return (f"{n} {'agency' if n == 1 else 'agencies'}: {s.meeting_3}/{n} return ≥3 status codes, "
            f"{s.meeting_5}/{n} return ≥5; {s.docs_received} documents received, "
            f"{100.0 * s.share_answered_3:.1f}% answered with ≥3 statuses, {100.0 * s.share_answered_5:.1f}% with ≥5; "
            f"{s.docs_sent} sent, {s.statuses_sent} statuses returned")


def format_json(resp: spb.StatsResponse) -> str:
    return shown_json(json_format.MessageToJson(resp, ensure_ascii=False, always_print_fields_with_no_presence=True,
                                                unquote_int64_if_possible=True))


def cmd_stats(args) -> int:
    resp = fetch(args)
    print(format_json(resp) if args.json else format_table(resp))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    sp = subparsers.add_parser("stats", help="documents sent and received, and statuses returned (with --subtree: every agency below)")
    sp.add_argument("--config", help=f"node YAML config (local API address and token) {CONFIG_HELP}")
    sp.add_argument("--agency", metavar="CODE", help="on a host serving several agencies (docs/hosting.md): the "
                    "agency whose token the command uses; default: the only one")
    sp.add_argument("--subtree", action="store_true", help="this agency and every agency below it, as last reported")
    sp.add_argument("--json", action="store_true", help="print the StatsResponse as JSON")
    sp.set_defaults(func=cmd_stats)
    return sp
