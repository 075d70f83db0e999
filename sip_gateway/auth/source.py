"""What the guard knows of a user: the HA1 of each algorithm (never a password)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sip_gateway.auth.digest import MD5, PREFERENCE, SHA256, Algorithm


@dataclass(frozen=True)
class UserCredentials:
    """A user's HA1s in lower-case hex; None where the store holds none."""

    md5: str | None = None
    sha256: str | None = None

    def __repr__(self) -> str:  # an HA1 is as good as the password for this realm
        return f"UserCredentials(md5={'set' if self.md5 else None}, " \
               f"sha256={'set' if self.sha256 else None})"

    def ha1(self, algorithm: Algorithm) -> str | None:
        return {MD5: self.md5, SHA256: self.sha256}.get(algorithm)

    @property
    def algorithms(self) -> tuple[Algorithm, ...]:
        """What this user can answer, strongest first (RFC 8760 2.4)."""
        return tuple(a for a in PREFERENCE if self.ha1(a))


class CredentialSource(Protocol):
    """The users of our realm, held in memory (a file or a table, reloaded aside)."""

    def lookup(self, username: str) -> UserCredentials | None: ...
