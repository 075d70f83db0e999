"""AoR canonicalisation (RFC 3261 10.3 step 5) and record keys under use_domain."""

from uuid import NAMESPACE_URL, uuid5

import pytest

from domain import AorPolicy, InvalidUri, aggregate_id, normalize_aor

WITH_DOMAIN = AorPolicy(use_domain=True)


def test_parameters_port_and_case_are_normalized_away():
    identity = normalize_aor("<sip:Alice@Example.COM:5060;transport=udp?x=y>")
    assert identity.uri == "sip:alice@example.com"
    assert identity.key == "alice"


def test_use_domain_keys_by_user_and_host():
    assert normalize_aor("sip:alice@example.com", WITH_DOMAIN).key == "alice@example.com"
    assert normalize_aor("sip:alice@other.org", WITH_DOMAIN).key == "alice@other.org"


def test_without_use_domain_one_user_on_two_domains_is_one_record():
    a = normalize_aor("sip:alice@example.com")
    b = normalize_aor("sips:alice@other.org")
    assert a.id == b.id and a.uri != b.uri


def test_a_non_default_port_stays_part_of_the_aor():
    identity = normalize_aor("sip:alice@example.com:5080", WITH_DOMAIN)
    assert identity.uri == "sip:alice@example.com:5080"
    assert identity.key == "alice@example.com:5080"


def test_case_sensitive_keeps_the_user_part_as_sent():
    policy = AorPolicy(case_sensitive=True)
    assert normalize_aor("sip:Alice@example.com", policy).key == "Alice"


def test_escapes_are_undone_and_user_phone_numbers_lose_visual_separators():
    assert normalize_aor("sip:%61lice@example.com").key == "alice"
    identity = normalize_aor("sip:+1-212-555-0101@example.com;user=phone", WITH_DOMAIN)
    assert identity.uri == "sip:+12125550101@example.com"
    assert identity.key == "+12125550101@example.com"


def test_tel_aors_key_by_their_digits():
    assert normalize_aor("tel:+1(212)555-0101").key == "+12125550101"


def test_shorthand_forms_get_the_sip_scheme_and_the_default_domain():
    assert normalize_aor("alice@example.com").uri == "sip:alice@example.com"
    policy = AorPolicy(default_domain="example.net")
    assert normalize_aor("alice", policy).uri == "sip:alice@example.net"


def test_the_aggregate_id_is_stable_and_derived_from_the_key():
    identity = normalize_aor("sip:Alice@Example.com;transport=tcp", WITH_DOMAIN)
    assert identity.id == aggregate_id("alice@example.com")
    assert identity.id == uuid5(NAMESPACE_URL, "sip:alice@example.com")


@pytest.mark.parametrize("text, reason", [
    ("", "empty AoR"),
    ("alice", "no domain"),
    ("sip:example.com", "no user part"),
    ("sip:alice@", "no host"),
])
def test_unusable_aors_are_refused(text, reason):
    with pytest.raises(InvalidUri, match=reason):
        normalize_aor(text)
