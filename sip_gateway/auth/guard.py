"""Digest authentication of REGISTER and SUBSCRIBE (RFC 3261 22.1 and 22.4, RFC 7616,
RFC 8760), as a registrar does it (RFC 3261 10.3 steps 3-4).

Theory of operation: `authenticate` looks for credentials of our realm in the
Authorization headers. None, an algorithm or qop we did not offer, an unknown user or a
wrong response: Unauthorized (401 with a fresh challenge). Right response but a nonce
that is stale or not ours (another node, before a restart): Unauthorized with
stale=true. Credentials that do not parse: 400. The digest uri is taken as the UA wrote
it, within the response it signs, and not compared with the Request-URI (RFC 7616
3.4.6 asks that it be; UAs such as sipp write the address they send to, and Kamailio's
auth takes them so). On success the caller gets the user and the
nonce use, which the nonce counts must admit before anything changes (replays), and
checks with `owns` that the user may act on the AoR (403 otherwise). Each request costs
one HMAC (the nonce) and two hashes (HA2 and the response); credentials come from memory.

The challenge (`challenge`) holds one WWW-Authenticate per algorithm the user has an HA1
for, SHA-256 first (RFC 8760 2.4), both for a user we do not know, each with qop="auth"
and a nonce of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.aor import AorPolicy, normalize_aor
from domain.errors import InvalidUri
from domain.uri import SipUri
from sip_gateway.auth.authorization import DigestCredentials, parse_authorization
from sip_gateway.auth.digest import PREFERENCE, algorithm_named, response, same_digest
from sip_gateway.auth.nonce_counts import NonceUse
from sip_gateway.auth.nonces import NonceMint, NonceState
from sip_gateway.auth.source import CredentialSource
from sip_gateway.errors import MalformedMessage, Unauthorized
from sip_gateway.sip import SipRequest
from sip_gateway.sip.grammar import quote


@dataclass(frozen=True)
class Authenticated:
    username: str
    use: NonceUse


class DigestGuard:
    def __init__(self, realm: str, mint: NonceMint, source: CredentialSource,
                 policy: AorPolicy) -> None:
        self.realm, self.mint, self.source, self.policy = realm, mint, source, policy

    def authenticate(self, request: SipRequest, now: float) -> Authenticated:
        """The user whose credentials `request` carries; raises Unauthorized or
        MalformedMessage."""
        credentials = self._ours(request)
        if credentials is None:
            raise Unauthorized(f"no credentials for realm {self.realm}")
        username = credentials.username
        algorithm = algorithm_named(credentials.algorithm)
        if algorithm is None or (credentials.qop or "").lower() != "auth":
            raise Unauthorized("digest with qop=auth and MD5 or SHA-256 expected", user=username)
        user = self.source.lookup(username)
        ha1 = user.ha1(algorithm) if user is not None else None
        nonce = self.mint.check(credentials.nonce, now)
        if ha1 is None or not same_digest(response(
                algorithm, ha1, request.method, credentials.uri, credentials.nonce,
                credentials.nc, credentials.cnonce), credentials.response):
            raise Unauthorized("wrong credentials", user=username)
        if nonce.state is not NonceState.FRESH:
            raise Unauthorized(f"nonce {nonce.state.value}", stale=True, user=username)
        return Authenticated(username, NonceUse(credentials.nonce, nonce.issued,
                                                int(credentials.nc, 16),
                                                request.headers.get("Call-ID") or "",
                                                request.cseq.number))

    def owns(self, username: str, aor: str) -> bool:
        """Whether `username` may act on `aor`: the same record key under the usrloc
        rules (use_domain, case_sensitive); a bare username is in our realm."""
        name = username if "@" in username else f"{username}@{self.realm}"
        try:
            return normalize_aor(name, self.policy).key == normalize_aor(aor, self.policy).key
        except InvalidUri:
            return False

    def challenge(self, error: Unauthorized, request: SipRequest,
                  now: float) -> list[tuple[str, str]]:
        """The WWW-Authenticate headers of a 401 answering `error`."""
        user = self.source.lookup(error.user or _to_user(request))
        algorithms = (user.algorithms if user is not None else ()) or PREFERENCE
        stale = ", stale=true" if error.stale else ""
        return [("WWW-Authenticate",
                 f"Digest realm={quote(self.realm)}, nonce=\"{self.mint.issue(now)}\", "
                 f"algorithm={algorithm.token}, qop=\"auth\"{stale}")
                for algorithm in algorithms]

    def _ours(self, request: SipRequest) -> DigestCredentials | None:
        """The first Digest credentials for our realm (RFC 3261 22.4: one per realm)."""
        for value in request.headers.get_all("Authorization"):
            credentials = parse_authorization(value)
            if credentials is not None and credentials.realm == self.realm:
                return credentials
        return None


def _to_user(request: SipRequest) -> str:
    """The To URI's user: whom a request without credentials registers."""
    try:
        uri = request.to_addr.uri
    except MalformedMessage:
        return ""
    return uri.user or "" if isinstance(uri, SipUri) else ""
