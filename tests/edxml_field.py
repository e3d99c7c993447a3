"""The edXML packets other software wrote (../shared/edxml-field), vendored here as the samples are;
tests/edxml/test_edxml_field.py checks they still match shared/ when it is there."""
from __future__ import annotations

import re
from pathlib import Path

DIR = Path(__file__).parent / "data" / "edxml-field"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "edxml-field"
NAMES = sorted(p.name for p in DIR.glob("*.edxml"))
MALFORMED = "malformed_template.edxml"
READABLE = [n for n in NAMES if n != MALFORMED]
WRAPPED = {  # packet -> [(attachment index, inner name, inner type, sha256 of the inner file)], as the national library zipped them
    "axis_2019_signature.edxml": [(0, "GUIDE_INSTALL OPENVPN.SIGNED.PDF", "application/pdf",
                                   "c0469bc89f8b4d2aa08161bc7591309989461aa5e67709f2608b86ddcfb3b943")],
    "axis_2025_knobstick.edxml": [(1, "1- CV gửi BTC vv TGĐ đi công tác châu Âu (28.11-9.12).doc", "application/msword",
                                   "e892bdc963830309f34e93283814915684088632f889d8983410b6ceed83a3c2")],
    "axis_2025_null_organid.edxml": [(0, "1761211722949_TestTrucLienThong.pdf", "application/pdf",
                                      "5e5594163389923f82dc1b4c9d0008f68064d7609498bf1a5c6196fbc35b1de9")],
    # the inner file is, byte for byte, the load-test template malformed_template.edxml
    "library_three_recipients.edxml": [(0, "1896_QD-TTg_m_294779.doc", "application/msword",
                                        "e7de316a8b44b0afd55400ab40ed5851fdca8c86b972aec61e7baf85b51e1fbc")],
    "library_zip_wrapped.edxml": [(0, "1896_QD-TTg_m_294779.doc", "application/msword",
                                   "ecbcb50762da26aaa0317acdb7b78d87b1dfec75389e37976d1fce13eea4a4dd")],
    "sdk_upload_type_mismatch.edxml": [
        (0, "metaA.txt", "text/plain", "35ee7404c2a9b4b06df46d8f2ef9cef1b897abc00ebdbb4a487be9a27d43dc99"),
        (1, "metaB.txt", "text/plain", "57fe695a77205d3db160e236abafc61a72ed87f4b8d8cb1d15a12554ec241bef")],
}


def raw(name: str) -> bytes:
    return (DIR / name).read_bytes()


def from_code(name: str) -> str:
    """The From OrganId the packet claims (the first OrganId after <edXML:From>)."""
    return re.search(rb"<edXML:From>\s*(?:<edXML:From>\s*)?<edXML:OrganId>([^<]*)<", raw(name)).group(1).decode()
