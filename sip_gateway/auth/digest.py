"""The digest computation of RFC 7616 3.4.1-3.4.3 (with RFC 8760's SHA-256 for SIP), qop=auth.

HA1 = H(username ":" realm ":" password) is what the credentials store keeps (never the
password); HA2 = H(method ":" digest-uri); the response is
H(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" HA2), all in lower-case hex.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass


@dataclass(frozen=True)
class Algorithm:
    """A digest algorithm as RFC 7616 6.1 registers it: its token and its hash."""

    token: str
    hash_name: str
    hex_length: int

    def hash(self, text: str) -> str:
        return _HASHES[self.hash_name](text.encode("utf-8", "surrogateescape")).hexdigest()


_HASHES = {"md5": hashlib.md5, "sha256": hashlib.sha256}


MD5 = Algorithm("MD5", "md5", 32)
SHA256 = Algorithm("SHA-256", "sha256", 64)
ALGORITHMS = {"MD5": MD5, "SHA-256": SHA256}  # tokens upper-cased; -sess variants: no
PREFERENCE = (SHA256, MD5)  # the order of the challenges (RFC 8760 2.4): strongest first


def algorithm_named(token: str | None) -> Algorithm | None:
    """The algorithm a credentials' `algorithm` directive names (absent: MD5, RFC 7616 3.3);
    None for one we do not serve."""
    return MD5 if token is None else ALGORITHMS.get(token.upper())


def ha1(algorithm: Algorithm, username: str, realm: str, password: str) -> str:
    """H(username:realm:password) (RFC 7616 3.4.2), as htdigest writes it for MD5."""
    return algorithm.hash(f"{username}:{realm}:{password}")


def response(algorithm: Algorithm, ha1_hex: str, method: str, uri: str, nonce: str, nc: str,
             cnonce: str, qop: str = "auth") -> str:
    """The request-digest for qop=auth (RFC 7616 3.4.1)."""
    ha2 = algorithm.hash(f"{method}:{uri}")
    return algorithm.hash(f"{ha1_hex}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def same_digest(expected: str, given: str) -> bool:
    """Hex digests compared in constant time, case-insensitively."""
    return hmac.compare_digest(expected.encode("ascii"), given.lower().encode("ascii", "replace"))
