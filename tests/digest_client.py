"""A UA's side of digest authentication, for tests: read a challenge, answer it."""

from __future__ import annotations

import re

from sip_gateway.auth import digest

_DIRECTIVE = re.compile(r'([A-Za-z-]+)=("[^"]*"|[^\s,]+)')


def challenge_of(value: str) -> dict[str, str]:
    """The directives of one WWW-Authenticate value (quotes removed)."""
    assert value.startswith("Digest "), value
    return {name.lower(): text.strip('"') for name, text in _DIRECTIVE.findall(value)}


def authorization(challenge: str, username: str, password: str, method: str, uri: str,
                  nc: int = 1, cnonce: str = "0a4f113b", realm: str | None = None) -> str:
    """The Authorization value answering `challenge` (a WWW-Authenticate value)."""
    asked = challenge_of(challenge)
    algorithm = digest.ALGORITHMS[asked.get("algorithm", "MD5").upper()]
    realm = realm or asked["realm"]
    count = f"{nc:08x}"
    answer = digest.response(algorithm, digest.ha1(algorithm, username, realm, password),
                             method, uri, asked["nonce"], count, cnonce)
    return (f'Digest username="{username}", realm="{realm}", nonce="{asked["nonce"]}", '
            f'uri="{uri}", response="{answer}", algorithm={algorithm.token}, '
            f'qop=auth, nc={count}, cnonce="{cnonce}"')
