"""The registrar's digest authentication as a UA meets it (RFC 3261 22 and 10.3 steps 3-4,
RFC 7616, RFC 8760): 401 with a challenge per algorithm, 200 once the credentials are
right, stale=true for a good answer to an old nonce, 401 for a replayed nonce count,
403 for another user's AoR, 400 for credentials that do not parse; never a 500."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings, strategies as st

from domain import AorPolicy
from sip_gateway.auth import MD5, SHA256, DigestGuard, NonceCounts, NonceMint, UserCredentials, ha1
from sip_gateway.server.handlers import GatewayPolicy, RequestHandler
from sip_gateway.server.notify_modes import notify_mode
from sip_gateway.server.peers import TrustedPeers
from sip_gateway.server.registrar import RegistrarPolicy
from sip_gateway.sip import parse_message
from sip_gateway.transport import Arrival
from tests.digest_client import authorization, challenge_of

REALM = "example.com"
T0 = 1_800_000_000.0
USERS = {
    "alice": UserCredentials(md5=ha1(MD5, "alice", REALM, "secret")),
    "bob": UserCredentials(md5=ha1(MD5, "bob", REALM, "hunter2"),
                           sha256=ha1(SHA256, "bob", REALM, "hunter2")),
}
UNTRUSTED = Arrival(("192.0.2.7", 5062), "udp", ("10.0.0.1", 5060))


class Users:
    def lookup(self, username):
        return USERS.get(username)


class Port:
    def __init__(self) -> None:
        self.registered = []

    async def register(self, aor, request):
        self.registered.append(aor)
        return []


class Counts:
    def __init__(self, clock) -> None:
        self.counts, self.clock = NonceCounts(300), clock

    async def admit(self, use):
        self.counts.admit(use, self.clock())


class Gateway:
    """A handler with a guard, on a clock the test moves."""

    def __init__(self, **aor_policy) -> None:
        self.now = T0
        self.port = Port()
        mint = NonceMint(b"s" * 32, REALM, 300)
        self.guard = DigestGuard(REALM, mint, Users(), AorPolicy(**aor_policy))
        policy = GatewayPolicy(RegistrarPolicy((REALM,), 60, 3600, 3600),
                               TrustedPeers(["10.0.0.0/8"]), notify_mode("rfc"))
        self.handler = RequestHandler(self.port, policy, lambda: self.now, guard=self.guard,
                                      nonces=Counts(lambda: self.now))

    def send(self, user: str = "alice", cseq: int = 1, *headers: str):
        text = (f"REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK-{cseq}\r\n"
                f"From: <sip:{user}@{REALM}>;tag=a\r\nTo: <sip:{user}@{REALM}>\r\n"
                f"Call-ID: call-{user}\r\nCSeq: {cseq} REGISTER\r\n"
                f"Contact: <sip:{user}@192.0.2.7:5062>\r\nExpires: 600\r\n"
                + "".join(f"{h}\r\n" for h in headers) + "Content-Length: 0\r\n\r\n")
        return asyncio.run(self.handler.handle(parse_message(text.encode()), UNTRUSTED))

    def answered(self, user, password, response, cseq, nc=1, as_user=None, which=0):
        challenge = response.headers.get_all("WWW-Authenticate")[which]
        value = authorization(challenge, as_user or user, password, "REGISTER",
                              f"sip:{REALM}", nc=nc)
        return self.send(user, cseq, f"Authorization: {value}"), value


def test_401_then_200_from_an_untrusted_source():
    gateway = Gateway()
    first = gateway.send()
    assert first.status == 401 and gateway.port.registered == []
    [challenge] = first.headers.get_all("WWW-Authenticate")
    directives = challenge_of(challenge)
    assert (directives["realm"], directives["algorithm"], directives["qop"]) == (REALM, "MD5", "auth")
    assert "stale" not in directives
    second, _ = gateway.answered("alice", "secret", first, cseq=2)
    assert second.status == 200 and gateway.port.registered == ["sip:alice@example.com"]


def test_a_user_with_a_sha256_ha1_is_offered_sha256_first():
    gateway = Gateway()
    first = gateway.send("bob")
    offered = [challenge_of(v)["algorithm"] for v in first.headers.get_all("WWW-Authenticate")]
    assert offered == ["SHA-256", "MD5"]
    nonces = {challenge_of(v)["nonce"] for v in first.headers.get_all("WWW-Authenticate")}
    assert len(nonces) == 2
    assert gateway.answered("bob", "hunter2", first, cseq=2)[0].status == 200
    assert gateway.answered("bob", "hunter2", gateway.send("bob", 3), cseq=4, which=1)[0].status == 200


def test_an_unknown_user_is_offered_both_and_refused_like_a_wrong_password():
    gateway = Gateway()
    first = gateway.send("mallory")
    assert len(first.headers.get_all("WWW-Authenticate")) == 2
    unknown, _ = gateway.answered("mallory", "guess", first, cseq=2)
    wrong, _ = gateway.answered("alice", "guess", gateway.send(), cseq=2)
    assert unknown.status == wrong.status == 401
    assert unknown.headers.get("Warning") == wrong.headers.get("Warning")
    assert "stale" not in challenge_of(wrong.headers.get("WWW-Authenticate"))


def test_a_good_answer_to_an_expired_or_foreign_nonce_is_stale():
    gateway = Gateway()
    first = gateway.send()
    gateway.now += 301
    late, _ = gateway.answered("alice", "secret", first, cseq=2)
    assert late.status == 401
    assert challenge_of(late.headers.get("WWW-Authenticate"))["stale"] == "true"
    other = Gateway()  # another serve: another secret
    foreign, _ = other.answered("alice", "secret", gateway.send(cseq=3), cseq=4)
    assert foreign.status == 401
    assert challenge_of(foreign.headers.get("WWW-Authenticate"))["stale"] == "true"
    assert other.answered("alice", "secret", foreign, cseq=5)[0].status == 200


def test_a_replayed_nonce_count_is_refused_and_the_next_count_accepted():
    gateway = Gateway()
    first = gateway.send()
    ok, value = gateway.answered("alice", "secret", first, cseq=2)
    assert ok.status == 200
    replay = gateway.send("alice", 3, f"Authorization: {value}")  # same nonce and nc
    assert replay.status == 401 and len(gateway.port.registered) == 1
    again = gateway.send("alice", 2, f"Authorization: {value}")  # the same request again
    assert again.status == 200
    assert gateway.answered("alice", "secret", first, cseq=4, nc=2)[0].status == 200


def test_another_users_aor_is_403():
    gateway = Gateway()
    first = gateway.send("bob")
    response, _ = gateway.answered("bob", "secret", first, cseq=2, as_user="alice", which=1)
    assert response.status == 403 and gateway.port.registered == []


@pytest.mark.parametrize("policy, user, allowed", [
    ({}, "Alice", True),  # user parts compare case-insensitively by default
    ({"case_sensitive": True}, "Alice", False),
    ({"use_domain": True}, "alice", True),
])
def test_ownership_follows_the_usrloc_rules(policy, user, allowed):
    guard = Gateway(**policy).guard
    assert guard.owns("alice", f"sip:{user}@{REALM}") is allowed
    assert guard.owns("alice", "sip:alice@other.org") is (not policy.get("use_domain"))


def test_the_digest_uri_is_taken_as_written_and_signed():
    gateway = Gateway()
    first = gateway.send()
    value = authorization(first.headers.get("WWW-Authenticate"), "alice", "secret", "REGISTER",
                          "sip:127.0.0.1:5060")  # sipp writes the address it sends to
    assert gateway.send("alice", 2, f"Authorization: {value}").status == 200
    altered = value.replace('uri="sip:127.0.0.1:5060"', 'uri="sip:example.com"')
    assert gateway.send("alice", 3, f"Authorization: {altered}").status == 401


def test_credentials_that_do_not_parse_are_400():
    gateway = Gateway()
    assert gateway.send("alice", 1, 'Authorization: Digest username="alice"').status == 400


def test_trusted_sources_authenticate_too_and_notify_stays_ip_based():
    gateway = Gateway()
    text = (f"REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK-t\r\n"
            f"From: <sip:alice@{REALM}>;tag=a\r\nTo: <sip:alice@{REALM}>\r\nCall-ID: t\r\n"
            "CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n")
    trusted = Arrival(("10.0.0.9", 5060), "udp", ("10.0.0.1", 5060))
    assert asyncio.run(gateway.handler.handle(parse_message(text.encode()), trusted)).status == 401
    notify = text.replace("REGISTER", "NOTIFY")
    assert asyncio.run(gateway.handler.handle(parse_message(notify.encode()),
                                              UNTRUSTED)).status == 403


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=200))
def test_any_authorization_header_gets_400_or_401_never_more(text):
    gateway = Gateway()
    try:
        request = parse_message((
            f"REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK-h\r\n"
            f"From: <sip:alice@{REALM}>;tag=a\r\nTo: <sip:alice@{REALM}>\r\nCall-ID: h\r\n"
            f"CSeq: 1 REGISTER\r\nAuthorization: Digest {text}\r\n"
            "Content-Length: 0\r\n\r\n").encode())
    except Exception:
        return  # not a message the parser takes: the core answers it, not the handler
    response = asyncio.run(gateway.handler.handle(request, UNTRUSTED))
    assert response.status in (400, 401)


def test_an_untrusted_watcher_authenticates_for_its_own_aor_and_trusted_ones_do_not():
    from sip_gateway.server.watch_access import WatcherAccess
    from sip_gateway.server.watch_request import WatchPolicy
    from tests.unit.test_watch_access import Watches, subscribe

    gateway, watches = Gateway(), Watches()
    registrar = RegistrarPolicy((REALM,), 60, 3600, 3600)
    trusted = TrustedPeers(["10.0.0.0/8"])
    policy = GatewayPolicy(registrar, trusted, notify_mode("rfc"),
                           watching=WatchPolicy(3761, 60, 7200),
                           access=WatcherAccess.of(trusted, registrar, True, ()))
    handler = RequestHandler(None, policy, lambda: gateway.now, watches=watches,
                             guard=gateway.guard, nonces=Counts(lambda: gateway.now))
    asked = subscribe("Event: reg").decode().replace("From: <sip:watcher@", "From: <sip:alice@")
    first = asyncio.run(handler.handle(parse_message(asked.encode()), UNTRUSTED))
    assert first.status == 401 and not watches.asked
    value = authorization(first.headers.get("WWW-Authenticate"), "alice", "secret",
                          "SUBSCRIBE", "sip:alice@example.com")
    signed = asked.replace("Event: reg", f"Event: reg\r\nAuthorization: {value}")
    assert asyncio.run(handler.handle(parse_message(signed.encode()), UNTRUSTED)).status == 200
    trusted_arrival = Arrival(("10.0.0.9", 5062), "udp", ("10.0.0.1", 5060))
    assert asyncio.run(handler.handle(parse_message(asked.encode()), trusted_arrival)).status == 200
    assert len(watches.asked) == 2
