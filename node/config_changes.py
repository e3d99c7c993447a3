"""What a changed node.yaml changes: which keys differ, which a running node takes on SIGHUP, and
which wait for a restart.

Live (taken on SIGHUP, node/reload.py): the identity files and the CRL (`tls.cert`, `tls.key`,
`tls.trust_anchors`, `tls.crl`, `tls.crl_grace`), `peers`, `limits`, `retry`, `log_level`,
`sealing` and `metrics`. Everything else is fixed for the life of the process: who the node is
and where it keeps its state (`node.*`), what it listens on (`listen`, `api.*`), and what its
parts were built with (`messages`, `registry`, `audit`, `parents_of`, `tls.insecure_plaintext`).

Keys are compared on `dump_config`'s plain form, flattened to dotted paths (`retry.first_delay`);
a list or a map is one key (`peers`, `tls.trust_anchors`, `parents_of`). The API tokens are
compared by digest, never shown (`api.token`, and each client's in `api.tokens`)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from .config import Settings, dump_config, located, parse_config

LIVE = ("tls.cert", "tls.key", "tls.trust_anchors", "tls.crl", "tls.crl_grace", "peers", "limits", "retry",
        "log_level", "sealing", "metrics")


def is_live(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in LIVE)


def flat(settings: Settings) -> dict[str, str]:
    """Every key set (explicitly or by default) as dotted path -> its value as JSON; the token as a digest."""
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and prefix != "parents_of":
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            out[prefix] = json.dumps(value, ensure_ascii=False, sort_keys=True)

    walk("", dump_config(settings))
    if "api.token" in out:
        out["api.token"] = json.dumps(_digest(settings.api.token))
    if "api.tokens" in out:
        out["api.tokens"] = json.dumps([{"name": c.name, "scopes": list(c.scopes), "token": _digest(c.token),
                                         **({"token_file": str(c.token_file)} if c.token_file else {})}
                                        for c in settings.api.tokens], ensure_ascii=False, sort_keys=True)
    return out


def _digest(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:16]


def changed(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """The keys whose values differ (set in one and not the other included), in a stable order."""
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


def merged(running: Settings, new: Settings) -> Settings:
    """What the node runs with after a reload: `new`'s live keys on `running`'s fixed ones."""
    keep, take = dump_config(running), dump_config(new)
    out = {k: v for k, v in keep.items() if not is_live(k)}
    for k, v in take.items():
        if is_live(k):
            out[k] = v
    tls = {k: v for k, v in keep["tls"].items() if not is_live(f"tls.{k}")}
    tls.update({k: v for k, v in take["tls"].items() if is_live(f"tls.{k}")})
    out["tls"] = tls
    settings = parse_config(out, "/", source=str(new.source or running.source or "<config>"))
    # a new object, validated: the API as it runs (the token in use, even if its token_file was rewritten)
    return located(dataclasses.replace(settings, api=running.api), new.source or running.source)
