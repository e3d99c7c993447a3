"""One module for signed objects (node/identity/signed.py): envelopes, relay marks, receipts, audit
checkpoints, agency records, statistics, evidence bundles and backup manifests are signed through
`signed.sign`, and every one whose signer is named by a certificate is checked through `signed.check`
(the trust store's per-certificate cache and the verified-signature cache with it). A module that
signs with a key or verifies a signature itself fails this test.

Left outside, by design: node/identity/keys.py (the primitive itself), the backup's own-key check
(node/backup.py: a node restores only what its own key signed, no certificate involved), and the bare
hop (node/harness/bare_hop.py: the baseline that measures a signature and nothing else)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from node import envelope, receipts
from node.clock import FakeClock
from node.identity import keys, signed
from node.pb import envelope_pb2 as pb

NODE = Path(__file__).resolve().parents[1] / "node"
ALLOWED = {
    "node/identity/keys.py": {"sign", "verify"},
    "node/identity/signed.py": {"sign", "verify"},
    "node/envelope.py": {"sign"},  # Signer.sign: the node's key, which signed.sign calls
    "node/backup.py": {"verify"},
    "node/harness/bare_hop.py": {"sign", "verify"},
}
CERTIFICATE_BUILDERS = {"node/identity/certs.py", "node/identity/revocation.py"}  # X.509 signed by the CA's key


def offences(path: Path, root: Path = NODE.parent) -> list[str]:
    where = path.relative_to(root).as_posix()
    if where in CERTIFICATE_BUILDERS:
        return []
    allowed = ALLOWED.get(where, set())
    found = []
    for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in ("sign", "verify"):
            owner = ast.unparse(n.func.value).rsplit(".", 1)[-1]  # keys, signer, previous, key, public_key, ...
            if owner in ("keys", "signer", "previous") or owner.endswith("key"):
                if n.func.attr not in allowed:
                    found.append(f"{where}:{n.lineno}: {ast.unparse(n.func)}(...)")
    return found


def test_no_module_signs_or_verifies_outside_the_signed_objects_module():
    found = [o for p in sorted(NODE.rglob("*.py")) if "pb" not in p.relative_to(NODE).parts[:1] for o in offences(p)]
    assert found == [], "signing or verifying outside node/identity/signed.py:\n" + "\n".join(found)


def test_the_check_catches_each_way_of_signing_or_verifying(tmp_path):
    sample = tmp_path / "node" / "stats" / "sample.py"
    sample.parent.mkdir(parents=True)
    sample.write_text("sig = signer.sign(body)\n"
                      "ok = keys.verify(k, sig, body)\n"
                      "ok = ident.public_key.verify(sig, body, alg)\n"
                      "again = previous.sign(body)\n"
                      "fine = signed.sign(signer, body)\n")
    assert [o.split(": ", 1)[1] for o in offences(sample, tmp_path)] == [
        "signer.sign(...)", "keys.verify(...)", "ident.public_key.verify(...)", "previous.sign(...)"]


def test_a_signature_is_checked_once_for_identical_bytes_and_never_remembered_when_bad(pki, clock):
    """The cache every kind shares: the second check of the same receipt costs no signature verification,
    and a forged one is refused every time."""
    signer = pki.signer("000.00.02.H53")
    trust = pki.trust(clock)
    [r] = receipts.issue(signer, [("m1", b"\x00" * 32)], clock)
    calls = []
    ident = trust.identify(r.receiver_cert)
    key = keys.VERIFIED.key(ident.public_key, r.signature, r.body)
    assert key not in keys.VERIFIED
    for _ in range(2):
        got = signed.check(trust, r.receiver_cert, r.signature, r.body, signer="000.00.02.H53",
                           wrong_signer=lambda i: AssertionError(i.code), bad_signature=lambda: AssertionError("bad"))
        calls.append(got.code)
    assert key in keys.VERIFIED and calls == ["000.00.02.H53"] * 2
    forged = bytes([r.signature[0] ^ 1]) + r.signature[1:]
    for _ in range(2):
        with pytest.raises(ValueError, match="forged"):
            signed.check(trust, r.receiver_cert, forged, r.body, signer="000.00.02.H53",
                         wrong_signer=lambda i: ValueError(i.code), bad_signature=lambda: ValueError("forged"))
    assert keys.VERIFIED.key(ident.public_key, forged, r.body) not in keys.VERIFIED


def test_the_signer_named_must_be_the_certificates(pki, clock):
    signer = pki.signer("000.00.02.H53")
    _, raw = envelope.seal(signer, "000.00.01.H53", pb.Payload(document=pb.Document(subject="s")), clock=clock,
                           lifetime_s=60)
    env = pb.Envelope.FromString(raw)
    with pytest.raises(ValueError, match="000.00.02.H53"):
        signed.check(pki.trust(clock), env.sender_cert, env.signature, env.header, signer="000.00.01.H53",
                     wrong_signer=lambda i: ValueError(i.code), bad_signature=lambda: ValueError("bad"))


def test_a_keys_point_is_encoded_once_and_never_lent_to_another_key():
    """The verified-signature cache keys on the signer's point: encoded once per key object (it was two
    thirds of every check's cache key), and an id reused by a new key never gets the old key's point."""
    class Key:
        def __init__(self, point: bytes) -> None:
            self.point, self.calls = point, 0

        def public_bytes(self, *_):
            self.calls += 1
            return self.point

    points = keys._Points()
    one = Key(b"\x04one")
    assert [points.of(one) for _ in range(3)] == [b"\x04one"] * 3 and one.calls == 1
    for i in range(50):  # short-lived keys: CPython reuses their ids
        assert points.of(Key(b"\x04k%d" % i)) == b"\x04k%d" % i
    real = keys.generate_key().public_key()
    assert keys.POINTS.of(real) == real.public_bytes(serialization.Encoding.X962,
                                                     serialization.PublicFormat.UncompressedPoint)
