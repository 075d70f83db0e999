"""The `[auth]` pieces serve and its UDP workers build: the digest guard over this
process's credentials and serve's nonce secret, and serve's nonce counts.

The secret is drawn by serve at start and handed to its workers with the settings, so
that a nonce one process issued is good in all of them; no other node and no later
start of serve shares it (sip_gateway/auth/nonces.py says why that is what we want).
The nonce counts live in serve only: a worker's `admit` goes over its link.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from infrastructure.credentials import Credentials
from infrastructure.settings import Settings
from sip_gateway.auth import DigestGuard, NonceCounts, NonceMint, NonceUse

SECRET_BYTES = 32


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def digest_guard(settings: Settings, secret: bytes, credentials: Credentials) -> DigestGuard:
    auth = settings.auth
    mint = NonceMint(secret, auth.realm or "", auth.nonce_lifetime)
    return DigestGuard(auth.realm or "", mint, credentials, settings.aor_policy)


class LocalNonces:
    """serve's NonceAdmitter: the nonce counts of every request this serve and its
    workers take."""

    def __init__(self, lifetime: int, clock: Callable[[], float] = time.time) -> None:
        self.counts, self.clock = NonceCounts(lifetime), clock

    async def admit(self, use: NonceUse) -> None:
        self.counts.admit(use, self.clock())
