"""Digest authentication's parts (RFC 7616, RFC 2617, RFC 8760): the math against the RFCs'
examples, stateless nonces, the nonce counts that refuse replays, and the Authorization
header read from hostile text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from sip_gateway.auth import (
    MD5,
    SHA256,
    NonceCounts,
    NonceMint,
    NonceState,
    NonceUse,
    ha1,
    parse_authorization,
    response,
)
from sip_gateway.errors import MalformedMessage, NonceReused

T0 = 1_800_000_000


# The math ----------------------------------------------------------------------------

def test_rfc_2617_section_3_5_example():
    secret = ha1(MD5, "Mufasa", "testrealm@host.com", "Circle Of Life")
    assert response(MD5, secret, "GET", "/dir/index.html", "dcd98b7102dd2f0e8b11d0f600bfb0c093",
                    "00000001", "0a4f113b") == "6629fae49393a05397450978507c4ef1"


@pytest.mark.parametrize("algorithm, expected", [
    (MD5, "8ca523f5e9506fed4657c9700eebdbec"),
    (SHA256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
])
def test_rfc_7616_section_3_9_1_examples(algorithm, expected):
    secret = ha1(algorithm, "Mufasa", "http-auth@example.org", "Circle of Life")
    assert response(algorithm, secret, "GET", "/dir/index.html",
                    "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "00000001",
                    "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ") == expected


def test_ha1_is_what_htdigest_writes():
    # htdigest -c file example.com alice (password "secret") writes this third field
    import hashlib
    assert ha1(MD5, "alice", "example.com", "secret") == \
        hashlib.md5(b"alice:example.com:secret").hexdigest()


# Nonces ------------------------------------------------------------------------------

def mint(secret: bytes = b"k" * 32, lifetime: int = 300) -> NonceMint:
    return NonceMint(secret, "example.com", lifetime)


def test_a_nonce_is_fresh_for_its_lifetime_then_stale():
    nonce = mint().issue(T0)
    assert mint().check(nonce, T0 + 300).state is NonceState.FRESH
    assert mint().check(nonce, T0 + 300).issued == T0
    assert mint().check(nonce, T0 + 301).state is NonceState.STALE


def test_every_nonce_is_new_and_safe_in_a_quoted_string():
    nonces = {mint().issue(T0) for _ in range(100)}
    assert len(nonces) == 100
    assert all(n.isascii() and '"' not in n and "\\" not in n for n in nonces)


def test_a_nonce_of_another_secret_or_realm_or_altered_is_not_ours():
    nonce = mint().issue(T0)
    assert mint(b"x" * 32).check(nonce, T0).state is NonceState.FOREIGN
    assert NonceMint(b"k" * 32, "other.org", 300).check(nonce, T0).state is NonceState.FOREIGN
    altered = nonce[:10] + ("A" if nonce[10] != "A" else "B") + nonce[11:]
    assert mint().check(altered, T0).state is NonceState.FOREIGN


def test_a_nonce_from_the_future_is_not_ours():
    assert mint().check(mint().issue(T0 + 60), T0).state is NonceState.FOREIGN


@given(st.text(max_size=80))
def test_any_text_is_checked_without_error(text):
    assert mint().check(text, T0).state in (NonceState.FOREIGN, NonceState.FRESH)


# Nonce counts ------------------------------------------------------------------------

def use(nc: int, nonce: str = "n1", cseq: int = 1, issued: int = T0) -> NonceUse:
    return NonceUse(nonce, issued, nc, "call-1", cseq)


def test_counts_must_go_up_and_a_repeated_count_is_a_replay():
    counts = NonceCounts(300)
    counts.admit(use(1), T0)
    counts.admit(use(2, cseq=2), T0)
    with pytest.raises(NonceReused):
        counts.admit(use(2, cseq=3), T0)  # the same nc on another request
    with pytest.raises(NonceReused):
        counts.admit(use(1, cseq=4), T0)


def test_a_retransmission_of_the_same_request_is_no_replay():
    counts = NonceCounts(300)
    counts.admit(use(1), T0)
    counts.admit(use(1), T0 + 1)  # the same Call-ID and CSeq: the UA's retransmission


def test_entries_go_once_their_nonce_is_stale_and_a_stale_use_is_refused():
    counts = NonceCounts(300)
    counts.admit(use(1), T0)
    counts.admit(use(1, nonce="n2", issued=T0 + 200), T0 + 200)
    counts.admit(use(1, nonce="n3", issued=T0 + 400), T0 + 400)
    assert len(counts) == 2  # n1 went
    with pytest.raises(NonceReused, match="stale"):
        counts.admit(use(2, cseq=2), T0 + 301)


def test_the_table_is_bounded_and_an_evicted_nonce_is_refused_from_then_on():
    counts = NonceCounts(300, capacity=2)
    for index in range(1, 4):
        counts.admit(use(1, nonce=f"n{index}", issued=T0 + index), T0 + 5)
    assert len(counts) == 2
    with pytest.raises(NonceReused, match="no longer tracked"):
        counts.admit(use(2, nonce="n1", issued=T0 + 1, cseq=2), T0 + 5)  # might be a replay
    counts.admit(use(1, nonce="n9", issued=T0 + 4), T0 + 5)  # issued later: still fine


# The Authorization header ------------------------------------------------------------

SIPP_LIKE = ('Digest username="alice",realm="example.com",cnonce="6b8b4567",nc=00000001,'
             'qop=auth,uri="sip:127.0.0.1:5060",nonce="abc",response="'
             + "0" * 32 + '",algorithm=MD5')


def test_credentials_as_sipp_writes_them():
    credentials = parse_authorization(SIPP_LIKE)
    assert (credentials.username, credentials.realm, credentials.uri) == (
        "alice", "example.com", "sip:127.0.0.1:5060")
    assert (credentials.nc, credentials.qop, credentials.algorithm) == ("00000001", "auth", "MD5")


def test_another_scheme_is_not_ours():
    assert parse_authorization("Basic YWxpY2U6c2VjcmV0") is None


@pytest.mark.parametrize("value", [
    "", "   ", "Digest", 'Digest username="alice"', SIPP_LIKE + ",realm=\"x\"",
    SIPP_LIKE.replace("nc=00000001", "nc=1"), SIPP_LIKE.replace('response="0', 'response="z'),
    SIPP_LIKE.replace('cnonce="6b8b4567",', ""), 'Digest username="unterminated, realm=x',
    "Digest " + "a=b," * 2000, 'Digest ,,,,', "Digest username=\x00",
])
def test_malformed_credentials_are_400(value):
    with pytest.raises(MalformedMessage):
        parse_authorization(value)


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_hostile_text_is_read_or_refused_never_a_crash(text):
    try:
        parse_authorization("Digest " + text)
    except MalformedMessage:
        pass


@given(st.text(alphabet='ab"\\\r\n ', max_size=12))
def test_the_fast_quoted_string_is_the_grammars(text):
    import re

    from sip_gateway.auth.authorization import _QUOTED
    from sip_gateway.sip.grammar import QUOTED_STRING
    assert bool(re.fullmatch(_QUOTED, text)) == bool(re.fullmatch(QUOTED_STRING, text))
