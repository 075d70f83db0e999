"""The Authorization header's Digest credentials (RFC 3261 22.4 and 25.1, RFC 7616 3.4).

`credentials = "Digest" LWS dig-resp *(COMMA dig-resp)`, each `name=value` with a token or
a quoted-string value. Unknown directives are skipped (auth-param); a directive given
twice, a missing one that qop=auth needs, a value of the wrong shape, or text that is not
the grammar at all is a MalformedMessage (400). Another scheme (Basic, ...) is not ours:
None. Nothing here raises anything else, whatever the peer wrote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sip_gateway.errors import MalformedMessage
from sip_gateway.sip.grammar import TOKEN_CHARS, show, unquote

MAX_CREDENTIALS = 4096  # characters of one Authorization header we read at all
REQUIRED = ("username", "realm", "nonce", "uri", "response")
_SCHEME = re.compile(rf"[ \t]*([{TOKEN_CHARS}]+)(?:[ \t]+|$)")
# A quoted-string as RFC 3261 25.1 has it, written as an unrolled loop (the same language
# as grammar.QUOTED_STRING, matched several times faster).
_QUOTED = r'"[^"\\\r\n]*(?:\\[^\r\n][^"\\\r\n]*)*"'
_DIRECTIVE = re.compile(rf"[ \t]*([{TOKEN_CHARS}]+)[ \t]*=[ \t]*({_QUOTED}|[{TOKEN_CHARS}:/@?&=\[\]]+)"
                        r"[ \t]*(?:,|$)")
_NC = re.compile(r"[0-9A-Fa-f]{8}")
_HEX = re.compile(r"[0-9A-Fa-f]+")


@dataclass(frozen=True)
class DigestCredentials:
    """What a UA answered a digest challenge with (RFC 7616 3.4)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str | None = None
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None


def parse_authorization(value: str) -> DigestCredentials | None:
    """The Digest credentials of one Authorization header value; None for another scheme."""
    if len(value) > MAX_CREDENTIALS:
        raise MalformedMessage("Authorization header too long")
    scheme = _SCHEME.match(value)
    if scheme is None:
        raise MalformedMessage(f"Authorization header without a scheme: {show(value)}")
    if scheme[1].lower() != "digest":
        return None
    found: dict[str, str] = {}
    pos, end = scheme.end(), len(value.rstrip(" \t"))
    for match in _DIRECTIVE.finditer(value, pos, end):  # each must start where one ended
        if match.start() != pos or match.end() == pos:
            break
        name = match[1].lower()
        if name in found:
            raise MalformedMessage(f"Authorization directive {name} given twice")
        text = match[2]
        found[name] = (unquote(text) if "\\" in text else text[1:-1]) if text[0] == '"' else text
        pos = match.end()
    if pos < end:
        raise MalformedMessage(f"bad Authorization directive at {show(value[pos:])}")
    missing = [name for name in REQUIRED if not found.get(name)]
    if missing:
        raise MalformedMessage(f"Authorization without {', '.join(missing)}")
    credentials = DigestCredentials(
        username=found["username"], realm=found["realm"], nonce=found["nonce"],
        uri=found["uri"], response=found["response"], algorithm=found.get("algorithm"),
        qop=found.get("qop"), nc=found.get("nc"), cnonce=found.get("cnonce"),
        opaque=found.get("opaque"))
    _check_shapes(credentials)
    return credentials


def _check_shapes(credentials: DigestCredentials) -> None:
    if _HEX.fullmatch(credentials.response) is None:
        raise MalformedMessage("Authorization response is not hexadecimal")
    if credentials.qop is not None:
        if credentials.nc is None or _NC.fullmatch(credentials.nc) is None:
            raise MalformedMessage("Authorization with qop needs nc of 8 hex digits")
        if not credentials.cnonce:
            raise MalformedMessage("Authorization with qop needs a cnonce")
