"""Agency codes: QCVN 102 parsing, error messages, and routing over the tree."""
from __future__ import annotations

import pickle

import pytest

from node import codes
from node.codes import ROOT, AgencyCode, CodeError, Hierarchy

# Real codes from shared/domain.md.
PROVINCE = "000.00.00.H53"        # Tây Ninh province People's Committee, level 1
DISTRICT = "000.00.35.H53"        # Hòa Thành district, level 2
COMMUNE = "000.23.38.H53"         # Bình Thạnh commune, level 3
COMMUNE_DISTRICT = "000.00.38.H53"
LIBRARY = "000.03.15.H53"         # provincial library, level 3
DEPARTMENT = "000.00.15.H53"
GOV_OFFICE = "000.00.00.G22"      # Government Office, level 1
TAXATION = "000.00.18.G12"        # General Department of Taxation, level 2
FINANCE = "000.00.00.G12"         # Ministry of Finance, level 1


# --- parse / level / parent (QCVN rule) -------------------------------------

@pytest.mark.parametrize("code, lvl", [
    (PROVINCE, 1), (DISTRICT, 2), (COMMUNE, 3), (LIBRARY, 3),
    (GOV_OFFICE, 1), (TAXATION, 2), (FINANCE, 1),
    ("123.23.38.H53", 4), ("000.00.00.A01", 1), ("000.00.00.K63", 1),
])
def test_level(code, lvl):
    assert codes.parse(code).level == lvl
    assert codes.level(code) == lvl


def test_parse_returns_frozen_dataclass():
    c = codes.parse(COMMUNE)
    assert c == AgencyCode(code=COMMUNE, groups=("000", "23", "38", "H53"), level=3)
    assert str(c) == COMMUNE
    with pytest.raises(AttributeError):
        c.level = 1  # type: ignore[misc]


@pytest.mark.parametrize("code, par", [
    (COMMUNE, COMMUNE_DISTRICT),
    (LIBRARY, DEPARTMENT),
    (DISTRICT, PROVINCE),
    (TAXATION, FINANCE),
    ("123.23.38.H53", COMMUNE),
    (PROVINCE, ROOT),
    (GOV_OFFICE, ROOT),
])
def test_parent(code, par):
    assert codes.parent(code) == par
    assert codes.parse(code).parent == par


def test_root():
    assert codes.parent(ROOT) is None
    assert codes.level(ROOT) == 0
    assert codes.ancestors(ROOT) == [ROOT]
    assert codes.validate(ROOT) == ROOT
    with pytest.raises(CodeError, match="national root"):
        codes.parse(ROOT)


def test_validate_returns_code_unchanged():
    assert codes.validate(COMMUNE) is COMMUNE
    with pytest.raises(CodeError):
        codes.validate("vxp.saas.03")  # not QCVN and nothing registered in DEFAULT


def test_is_qcvn_and_is_identifier():
    assert codes.is_qcvn(COMMUNE)
    assert not codes.is_qcvn("28.22.H17")
    assert not codes.is_qcvn(ROOT)
    assert codes.is_identifier("vxp.saas.03")
    assert codes.is_identifier("A" * 35)
    assert not codes.is_identifier("A" * 36)
    assert not codes.is_identifier("a..b")


# --- malformed codes: the message names the group and the expectation --------

@pytest.mark.parametrize("code, message", [
    ("000.2X.38.H53", 'agency code "000.2X.38.H53": group 2 "2X" must be 2 digits'),
    ("00.00.38.H53", 'group 1 "00" must be 3 digits'),
    ("0000.00.38.H53", 'group 1 "0000" must be 3 digits'),
    ("000.00.3.H53", 'group 3 "3" must be 2 digits'),
    ("000.00.38.H5", 'group 4 "H5" must be a letter A-K followed by 2 digits (e.g. H53)'),
    ("000.00.38.53H", 'group 4 "53H" must be a letter A-K followed by 2 digits'),
    ("000.00.38.h53", 'group 4 "h53" must start with an uppercase letter A-K'),
    ("000.00.38.Z53", 'group 4 "Z53" must start with a letter A-K'),
    ("28.22.H17", 'agency code "28.22.H17" must have 4 dot-separated groups, got 3'),
    ("000.00.00.38.H53", "must have 4 dot-separated groups, got 5"),
    ("", 'agency code "" is empty'),
    (" 000.00.00.H53", 'group 1 " 000" must be 3 digits'),  # kept exact, never stripped
    ("000.00.00.H53\n", 'group 4 "H53\n" must be a letter'),
    ("000.00.00.H\u0665\u0663", "group 4"),  # non-ASCII digits are not digits here
])
def test_malformed_group_messages(code, message):
    with pytest.raises(CodeError) as info:
        codes.parse(code)
    assert message in str(info.value)
    assert info.value.code == code


@pytest.mark.parametrize("code, message", [
    ("001.00.38.H53", 'group 2 "00" is zero but group 1 "001" is not'),
    ("000.23.00.H53", 'group 3 "00" is zero but group 2 "23" is not'),
    ("001.23.00.H53", 'group 3 "00" is zero but group 2 "23" is not'),
])
def test_zero_group_above_non_zero_group(code, message):
    with pytest.raises(CodeError, match=message):
        codes.parse(code)


def test_lowercase_is_refused_not_normalised():
    with pytest.raises(CodeError, match="case-sensitive"):
        codes.validate("000.00.00.h53")


def test_non_string_is_a_code_error():
    with pytest.raises(CodeError, match="must be a string, got int"):
        codes.validate(53)  # type: ignore[arg-type]


def test_code_error_is_value_error_and_pickles():
    err = CodeError("x.y", "is bad")
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert (again.code, again.problem, str(again)) == ("x.y", "is bad", str(err))


# --- codes outside the QCVN form ---------------------------------------------

def test_odd_code_without_registered_parent():
    with pytest.raises(CodeError) as info:
        codes.parent("vxp.saas.03")
    msg = str(info.value)
    assert "not of the QCVN 102 form" in msg
    assert "no registered parent" in msg
    assert "got 3" in msg  # why it is not QCVN


def test_malformed_qcvn_looking_code_without_parent_explains_the_group():
    with pytest.raises(CodeError, match=r'group 4 "h53".*cannot be placed: it differs from .*"000.00.00.H53" only by'):
        Hierarchy().parent("000.00.00.h53")


@pytest.mark.parametrize("twin, real", [("000.21.35.h53", "000.21.35.H53"), ("000.00.00.k01", "000.00.00.K01"),
                                        ("vn", "VN"), ("Vn", "VN")])
def test_a_case_twin_of_a_qcvn_code_is_no_identifier_and_cannot_be_registered(twin, real):
    assert codes.case_twin_of(twin) == real
    assert not codes.is_identifier(twin)
    with pytest.raises(CodeError, match="only by letter case"):
        Hierarchy({twin: "000.00.35.H53"})
    assert codes.case_twin_of(real) is None and codes.case_twin_of("vxp.saas.03") is None
    assert codes.case_twin_of("000.21.35.z53") is None  # Z is no level-1 letter: not a twin of anything


@pytest.mark.parametrize("code, message", [
    ("a..b", "empty group"),
    (".a", "empty group"),
    ("a.", "empty group"),
    ("x" * 36, "36 characters long, at most 35"),
    ("vxp saas", "' ' at position 4"),
    ("vxp-saas", "'-' at position 4"),
])
def test_not_even_an_identifier(code, message):
    with pytest.raises(CodeError, match="not a valid agency identifier") as info:
        Hierarchy().parent(code)
    assert message in str(info.value)


def test_odd_codes_with_registered_parents():
    h = Hierarchy({"vxp.saas.03": PROVINCE, "28.22.H17": ROOT, "28.22.H17.01": "28.22.H17"})
    assert h.parent("vxp.saas.03") == PROVINCE
    assert h.level("vxp.saas.03") == 2
    assert h.parent("28.22.H17") == ROOT
    assert h.level("28.22.H17") == 1
    assert h.level("28.22.H17.01") == 2
    assert h.ancestors("28.22.H17.01") == ["28.22.H17.01", "28.22.H17", ROOT]
    assert h.validate("vxp.saas.03") == "vxp.saas.03"
    assert h.route("vxp.saas.03", DISTRICT) == ["vxp.saas.03", PROVINCE, DISTRICT]
    # QCVN codes still follow the rule
    assert h.parent(COMMUNE) == COMMUNE_DISTRICT
    assert dict(h.registered)["28.22.H17"] == ROOT


def test_registry_takes_precedence_over_rule():
    h = Hierarchy({LIBRARY: PROVINCE})  # registry corrects a QCVN code's position
    assert h.parent(LIBRARY) == PROVINCE
    assert h.level(LIBRARY) == 2
    assert codes.parent(LIBRARY) == DEPARTMENT  # DEFAULT unaffected


def test_registry_is_copied_and_read_only():
    src = {"vxp.saas.03": PROVINCE}
    h = Hierarchy(src)
    src["vxp.saas.03"] = GOV_OFFICE
    assert h.parent("vxp.saas.03") == PROVINCE
    with pytest.raises(TypeError):
        h.registered["x"] = ROOT  # type: ignore[index]


@pytest.mark.parametrize("extra, message", [
    ({ROOT: PROVINCE}, "national root"),
    ({"a b": PROVINCE}, "cannot be registered"),
    ({"vxp.saas.03": "a..b"}, 'registered parent "a..b" has an empty group'),
    ({"vxp.saas.03": "vxp.saas.03"}, "its own parent"),
    ({"a.1": "a.2", "a.2": "a.1"}, "cycle: a.1 -> a.2 -> a.1"),
    ({PROVINCE: DISTRICT}, "cycle"),  # the rule puts DISTRICT back under PROVINCE
    ({"vxp.saas.03": "28.22.H17"}, "vxp.saas.03 -> 28.22.H17 does not reach VN"),
])
def test_bad_registry_fails_at_construction(extra, message):
    with pytest.raises(CodeError, match=message.replace(".", r"\.")):
        Hierarchy(extra)


# --- ancestors / is_under / lca -----------------------------------------------

def test_ancestors():
    assert codes.ancestors(COMMUNE) == [COMMUNE, COMMUNE_DISTRICT, PROVINCE, ROOT]
    assert codes.ancestors("123.23.38.H53") == ["123.23.38.H53", COMMUNE, COMMUNE_DISTRICT, PROVINCE, ROOT]


def test_is_under_is_strict():
    assert codes.is_under(COMMUNE, COMMUNE_DISTRICT)
    assert codes.is_under(COMMUNE, PROVINCE)
    assert codes.is_under(COMMUNE, ROOT)
    assert codes.is_under(TAXATION, FINANCE)
    assert not codes.is_under(COMMUNE, COMMUNE)
    assert not codes.is_under(COMMUNE, DISTRICT)
    assert not codes.is_under(PROVINCE, COMMUNE)
    assert not codes.is_under(TAXATION, GOV_OFFICE)
    assert not codes.is_under(ROOT, ROOT)
    with pytest.raises(CodeError):
        codes.is_under(COMMUNE, "000.00.38.H5")


@pytest.mark.parametrize("a, b, common", [
    (COMMUNE, "000.11.38.H53", COMMUNE_DISTRICT),
    (COMMUNE, DISTRICT, PROVINCE),
    (COMMUNE, LIBRARY, PROVINCE),
    (COMMUNE, TAXATION, ROOT),
    (COMMUNE, PROVINCE, PROVINCE),
    (PROVINCE, COMMUNE, PROVINCE),
    (COMMUNE, COMMUNE, COMMUNE),
    (GOV_OFFICE, FINANCE, ROOT),
])
def test_lca(a, b, common):
    assert codes.lca(a, b) == common


# --- route / next_hop ----------------------------------------------------------

def test_route_within_a_district():
    assert codes.route(COMMUNE, "000.11.38.H53") == [COMMUNE, COMMUNE_DISTRICT, "000.11.38.H53"]


def test_route_across_districts():
    assert codes.route(COMMUNE, "000.11.35.H53") == [
        COMMUNE, COMMUNE_DISTRICT, PROVINCE, DISTRICT, "000.11.35.H53"]


def test_route_across_provinces_goes_through_root():
    assert codes.route(COMMUNE, TAXATION) == [
        COMMUNE, COMMUNE_DISTRICT, PROVINCE, ROOT, FINANCE, TAXATION]
    assert codes.route(GOV_OFFICE, PROVINCE) == [GOV_OFFICE, ROOT, PROVINCE]


def test_route_to_an_ancestor():
    assert codes.route(COMMUNE, PROVINCE) == [COMMUNE, COMMUNE_DISTRICT, PROVINCE]
    assert codes.route(LIBRARY, ROOT) == [LIBRARY, DEPARTMENT, PROVINCE, ROOT]


def test_route_from_an_ancestor_down():
    assert codes.route(PROVINCE, COMMUNE) == [PROVINCE, COMMUNE_DISTRICT, COMMUNE]
    assert codes.route(ROOT, TAXATION) == [ROOT, FINANCE, TAXATION]


def test_route_to_itself():
    assert codes.route(COMMUNE, COMMUNE) == [COMMUNE]


def test_route_is_reverse_of_reverse_route():
    assert codes.route(TAXATION, LIBRARY) == codes.route(LIBRARY, TAXATION)[::-1]


def test_route_refuses_malformed_codes():
    with pytest.raises(CodeError, match="group 2"):
        codes.route(COMMUNE, "000.2X.38.H53")


def test_next_hop():
    assert codes.next_hop(COMMUNE, "000.11.35.H53") == COMMUNE_DISTRICT
    assert codes.next_hop(COMMUNE_DISTRICT, "000.11.35.H53") == PROVINCE
    assert codes.next_hop(PROVINCE, "000.11.35.H53") == DISTRICT
    assert codes.next_hop(PROVINCE, TAXATION) == ROOT
    assert codes.next_hop(ROOT, TAXATION) == FINANCE


def test_next_hop_walks_the_whole_route():
    here, dst, hops = LIBRARY, TAXATION, [LIBRARY]
    while here != dst:
        here = codes.next_hop(here, dst)
        hops.append(here)
    assert hops == codes.route(LIBRARY, TAXATION)


def test_next_hop_at_destination():
    with pytest.raises(ValueError, match="already at destination"):
        codes.next_hop(COMMUNE, COMMUNE)


def test_remembered_ancestry_belongs_to_its_hierarchy():
    """Relays memoize ancestry per Hierarchy; a new one (odd codes learned) must not see the old answers."""
    before = Hierarchy({"vxp.saas.03": "000.00.35.H53"})
    after = Hierarchy({"vxp.saas.03": "000.00.38.H53"})
    assert before.ancestors("vxp.saas.03")[1] == "000.00.35.H53"
    assert after.ancestors("vxp.saas.03")[1] == "000.00.38.H53"
    assert before.ancestors("vxp.saas.03")[1] == "000.00.35.H53"
    chain = before.ancestors("000.21.35.H53")
    chain.append("mutated by a caller")
    assert before.ancestors("000.21.35.H53") == ["000.21.35.H53", "000.00.35.H53", "000.00.00.H53", ROOT]


def test_an_unplaceable_code_is_refused_every_time_not_remembered():
    h = Hierarchy()
    for _ in range(2):
        with pytest.raises(CodeError):
            h.ancestors("vxp.saas.03")
