"""Address-of-record identity: the canonical AoR (RFC 3261 10.3 step 5) and its record key.

The registrar canonicalises the To URI: URI parameters (user=phone included), headers and
password go, escapes are undone, scheme and host are lower-cased and the default port is
dropped. Like a usrloc table, the record key is `user@host` with `use_domain` on and
the user part alone with it off; the user part is case-insensitive unless
`case_sensitive` is set (RFC 3261 19.1.4 strictness). The aggregate id is
uuid5(NAMESPACE_URL, "sip:" + key), the same on every node and after every restart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.errors import InvalidUri
from domain.uri import DEFAULT_PORTS, VISUAL_SEPARATORS, SipUri, TelUri, parse_uri

_HAS_SCHEME = re.compile(r"^(sips?|tel):", re.IGNORECASE)


@dataclass(frozen=True)
class AorPolicy:
    """How AoRs are keyed: the usrloc `use_domain` and `case_sensitive` settings."""

    use_domain: bool = False
    case_sensitive: bool = False
    default_domain: str | None = None


@dataclass(frozen=True)
class AorIdentity:
    """A normalized AoR URI and the key of its registration record."""

    uri: str
    key: str

    @cached_property
    def id(self) -> UUID:
        return aggregate_id(self.key)


def aggregate_id(key: str) -> UUID:
    return uuid5(NAMESPACE_URL, "sip:" + key)


def normalize_aor(text: str, policy: AorPolicy = AorPolicy()) -> AorIdentity:
    """Canonical AoR and record key for `text` (a URI, `user@host`, or a bare user)."""
    if not isinstance(text, str):
        raise InvalidUri("empty AoR")
    return _normalize(text, policy)


@lru_cache(maxsize=65536)
def _normalize(text: str, policy: AorPolicy) -> AorIdentity:
    """normalize_aor, once per (text, policy): identities are immutable values."""
    text = text.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if not text:
        raise InvalidUri("empty AoR")
    if not _HAS_SCHEME.match(text):
        if "@" not in text:
            if not policy.default_domain:
                raise InvalidUri(f"AoR {text!r} has no domain and no default_domain is set")
            text = f"{text}@{policy.default_domain}"
        text = "sip:" + text
    uri = parse_uri(text)
    if isinstance(uri, TelUri):
        return _tel_identity(uri)
    return _sip_identity(uri, policy)


def _sip_identity(uri: SipUri, policy: AorPolicy) -> AorIdentity:
    if uri.user is None:
        raise InvalidUri(f"AoR {uri} has no user part")
    user = uri.user
    if uri.is_phone:
        user = VISUAL_SEPARATORS.sub("", user)
    if not policy.case_sensitive:
        user = user.lower()
    port = None if uri.port == DEFAULT_PORTS[uri.scheme] else uri.port
    canonical = SipUri(uri.scheme, user, uri.host, port)
    hostport = uri.host if port is None else f"{uri.host}:{port}"
    key = f"{user}@{hostport}" if policy.use_domain else user
    return AorIdentity(str(canonical), key)


def _tel_identity(uri: TelUri) -> AorIdentity:
    context = [(k, v) for k, v in uri.params if k.lower() == "phone-context"]
    canonical = TelUri(uri.digits, tuple(context))
    return AorIdentity(str(canonical), canonical.digits + "".join(f";{v}" for _, v in context))
