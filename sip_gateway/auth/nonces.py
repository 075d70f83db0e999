"""Stateless nonces (RFC 7616 3.3, 5.4): the time they were issued, a salt, and an HMAC of
both under a secret, so that any process holding the secret can tell ours from forged
ones, and fresh from stale, without remembering what it issued.

    nonce = base64url(issued (4 bytes, Unix seconds) | salt (8) | HMAC-SHA256(secret,
            realm | issued | salt)[:16])

The salt makes every challenge's nonce unique, so that the nonce counts (nonce_counts.py)
tell one UA's requests from another's. The secret is serve's own, drawn at start and
handed to its UDP workers: a nonce from another node or from before a restart is not
ours, and the guard then answers `stale=true` when the rest of the credentials were right
(the UA retries with the new nonce without asking its user).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hmac
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass

SALT_BYTES, MAC_BYTES = 8, 16
_ISSUED = struct.Struct(">I")
NONCE_BYTES = _ISSUED.size + SALT_BYTES + MAC_BYTES
CLOCK_SKEW = 5  # seconds a nonce may seem to come from the future (processes' clocks)


class NonceState(enum.Enum):
    FRESH = "fresh"  # ours and younger than the lifetime
    STALE = "stale"  # ours, but older than the lifetime
    FOREIGN = "foreign"  # not ours: another secret (node, restart), or not a nonce at all


@dataclass(frozen=True)
class NonceCheck:
    state: NonceState
    issued: int = 0  # Unix seconds (0 when FOREIGN)


class NonceMint:
    """Issues and checks the nonces of one realm under one secret."""

    def __init__(self, secret: bytes, realm: str, lifetime: int,
                 salt: Callable[[int], bytes] = os.urandom) -> None:
        self.secret, self._realm = secret, realm.encode("utf-8")
        self.lifetime, self._salt = lifetime, salt

    def issue(self, now: float) -> str:
        head = _ISSUED.pack(int(now) & 0xFFFFFFFF) + self._salt(SALT_BYTES)
        raw = head + self._mac(head)
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    def check(self, nonce: str, now: float) -> NonceCheck:
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (binascii.Error, ValueError):
            return NonceCheck(NonceState.FOREIGN)
        if len(raw) != NONCE_BYTES:
            return NonceCheck(NonceState.FOREIGN)
        head, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(head)):
            return NonceCheck(NonceState.FOREIGN)
        (issued,) = _ISSUED.unpack_from(head)
        if issued > now + CLOCK_SKEW:
            return NonceCheck(NonceState.FOREIGN)
        state = NonceState.FRESH if now - issued <= self.lifetime else NonceState.STALE
        return NonceCheck(state, issued)

    def _mac(self, head: bytes) -> bytes:
        return hmac.digest(self.secret, self._realm + head, "sha256")[:MAC_BYTES]
