"""The merger run of scripts/merger-run, cut down (two districts of two communes, two communes of Đồng Nai), on
real node processes: every document arrives exactly once at the agency addressed or its successor, every 01
status comes back to its sender, re-routed documents told their senders, the retired nodes end empty and revoked
(docs/restructuring.md, "The merger, run")."""
from __future__ import annotations

from node.harness import merger


def test_binh_phuoc_merges_into_dong_nai_while_mail_flows(tmp_path):
    result = merger.run(tmp_path / "run", districts=2, dn_communes=2, rate=3.0, before=12, during_min=12, after=16,
                        seed=7, timeout=300.0)
    total = result["total"]
    assert result["send_errors_total"] == 0, result["send_errors"]
    assert total["documents"] == 12 + result["phases"]["during"]["documents"] + 16
    assert (total["lost"], total["duplicated"], total["wrong_place"]) == (0, 0, 0), result
    assert total["statuses_back"] == total["documents"], result
    assert result["phases"]["after"]["rerouted"] > 0 and total["notices"] == total["rerouted"], result
    retired = result["retired_nodes"]
    assert set(retired) == {"000.00.00.H10", "000.00.31.H10", "000.00.32.H10", "000.02.31.H10", "000.02.32.H10"}
    assert all((v["queued"], v["parked"], v["unfetched"], v["drained"], v["queues_depth"], v["stopped"]) ==
               (0, 0, 0, True, 0, 0) for v in retired.values()), retired
    assert all("ca revoke" in v["revoke_command"] for v in retired.values()), retired
    # the harness holds the CA: each drained node revoked, the CRL published at the root reached every node in
    # service, and the retired nodes' certificates are refused by the root and by their successors
    assert all((v["revoked"], v["refused_by_root"], v["refused_by_successor"]) == (True, "CERT_REVOKED", "CERT_REVOKED")
               for v in retired.values()), retired
    revocation = result["revocation"]
    assert revocation["crl_missing"] == [] and revocation["crl_reached"] == result["nodes"] - len(retired), revocation
