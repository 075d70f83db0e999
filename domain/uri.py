"""SIP, SIPS and tel URIs as values, with RFC 3261 19.1.4 comparison keys.

Parsing is deliberately strict about structure (scheme, host, port, bracketed IPv6) and
lenient about characters a real UA puts in a user part; every failure is an InvalidUri
with a reason. Comparison follows RFC 3261 19.1.4: scheme and host are case-insensitive,
the user part is compared after unescaping, parameter names and the values of the
well-known parameters are case-insensitive. tel URIs (RFC 3966) compare by their digits,
visual separators removed.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, unquote

from domain.errors import InvalidUri

MAX_URI_LENGTH = 2048
SIP_SCHEMES = ("sip", "sips")
DEFAULT_PORTS = {"sip": 5060, "sips": 5061}
# Parameters whose values are compared case-insensitively (RFC 3261 19.1.4).
CASELESS_PARAMS = frozenset({"transport", "user", "method", "maddr", "ttl", "lr"})
VISUAL_SEPARATORS = re.compile(r"[-.()]")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?)*\.?$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_TEL_GLOBAL = re.compile(r"^\+[0-9().-]*[0-9][0-9().-]*$")
_TEL_LOCAL = re.compile(r"^[0-9A-Fa-f*#().-]*[0-9A-Fa-f*#][0-9A-Fa-f*#().-]*$")
_DIGITS = re.compile(r"[0-9]{1,5}")
_BAD_CHARACTER = re.compile(r'[\s\x00-\x1f\x7f<>"]')
# Characters left unescaped in a user part: unreserved / user-unreserved (RFC 3261 25.1).
_USER_SAFE = "-_.!~*'()&=+$,;?/"

Params = tuple[tuple[str, "str | None"], ...]


@dataclass(frozen=True)
class SipUri:
    """A SIP or SIPS URI (RFC 3261 19.1.1)."""

    scheme: str
    user: str | None
    host: str
    port: int | None = None
    password: str | None = None
    params: Params = ()
    headers: str | None = None

    def param(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.params:
            if key.lower() == name:
                return value if value is not None else ""
        return None

    @property
    def is_phone(self) -> bool:
        return (self.param("user") or "").lower() == "phone"

    def __str__(self) -> str:
        text = f"{self.scheme}:"
        if self.user is not None:
            text += quote(self.user, safe=_USER_SAFE)
            if self.password is not None:
                text += ":" + self.password
            text += "@"
        text += self.host
        if self.port is not None:
            text += f":{self.port}"
        text += "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params)
        if self.headers:
            text += "?" + self.headers
        return text

    def comparison_key(self) -> str:
        """Canonical text: equal for URIs that RFC 3261 19.1.4 calls equivalent."""
        params = sorted(
            (k.lower(), (v.lower() if k.lower() in CASELESS_PARAMS and v else v) or "")
            for k, v in self.params
        )
        user = self.user
        if user is not None and self.is_phone:
            user = VISUAL_SEPARATORS.sub("", user)
        return "|".join(
            [
                self.scheme,
                user or "",
                self.password or "",
                self.host.lower(),
                str(self.port or ""),
                ";".join(f"{k}={v}" for k, v in params),
                "&".join(sorted((self.headers or "").split("&"))),
            ]
        )


@dataclass(frozen=True)
class TelUri:
    """A tel URI (RFC 3966): a global number `+...` or a local one with phone-context."""

    number: str
    params: Params = ()

    scheme = "tel"

    @property
    def digits(self) -> str:
        return VISUAL_SEPARATORS.sub("", self.number)

    def __str__(self) -> str:
        return "tel:" + self.number + "".join(
            f";{k}" if v is None else f";{k}={v}" for k, v in self.params
        )

    def comparison_key(self) -> str:
        params = sorted((k.lower(), (v or "").lower()) for k, v in self.params)
        return "tel|" + self.digits.lower() + "|" + ";".join(f"{k}={v}" for k, v in params)


Uri = SipUri | TelUri


def parse_uri(text: str) -> Uri:
    """Parse a SIP, SIPS or tel URI; `<...>` around it is accepted and removed."""
    if not isinstance(text, str):
        raise InvalidUri(f"not a URI: {text!r}")
    return _parse_text(text)


@lru_cache(maxsize=65536)
def _parse_text(text: str) -> Uri:
    """parse_uri of a string: URIs are immutable values, so the same text (an AoR, a
    binding's contact, our own addresses) is parsed once; refusals are not cached."""
    text = text.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if not text:
        raise InvalidUri("empty URI")
    if len(text) > MAX_URI_LENGTH:
        raise InvalidUri(f"URI longer than {MAX_URI_LENGTH} characters")
    if _BAD_CHARACTER.search(text):
        raise InvalidUri(f"bad character in URI {text!r}")
    scheme, sep, rest = text.partition(":")
    if not sep:
        raise InvalidUri(f"URI has no scheme: {text!r}")
    scheme = scheme.lower()
    if scheme in SIP_SCHEMES:
        return _parse_sip(scheme, rest, text)
    if scheme == "tel":
        return _parse_tel(rest, text)
    raise InvalidUri(f"unsupported URI scheme {scheme!r} in {text!r} (sip, sips or tel)")


def _parse_params(text: str, whole: str) -> Params:
    params = []
    for item in text.split(";"):
        if not item:
            raise InvalidUri(f"empty URI parameter in {whole!r}")
        name, eq, value = item.partition("=")
        if not name:
            raise InvalidUri(f"URI parameter without a name in {whole!r}")
        params.append((name, value if eq else None))
    return tuple(params)


def _parse_sip(scheme: str, rest: str, whole: str) -> SipUri:
    # The user part may hold '?' and ';' (user-unreserved, RFC 3261 25.1; RFC 4475
    # 3.1.1.2), headers may not hold '@': the first '@' ends the userinfo.
    userinfo, at, hostpart = rest.partition("@")
    if not at:
        userinfo, hostpart = "", rest
    hostpart, _, headers = hostpart.partition("?")
    user = password = None
    if at:
        user, colon, pw = userinfo.partition(":")
        password = pw if colon else None
        if not user:
            raise InvalidUri(f"empty user part in {whole!r}")
        try:
            user = unquote(user, errors="strict")
        except UnicodeDecodeError:
            raise InvalidUri(f"bad escape in user part of {whole!r}") from None
    hostport, semi, paramtext = hostpart.partition(";")
    params = _parse_params(paramtext, whole) if semi else ()
    host, port = _parse_hostport(hostport, whole)
    return SipUri(scheme, user, host, port, password, params, headers or None)


def _parse_hostport(text: str, whole: str) -> tuple[str, int | None]:
    port_text = None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise InvalidUri(f"unterminated IPv6 reference in {whole!r}")
        try:
            address = ipaddress.IPv6Address(text[1:end])
        except ValueError:
            raise InvalidUri(f"bad IPv6 address in {whole!r}") from None
        host = f"[{address.compressed}]"
        tail = text[end + 1 :]
        if tail:
            if not tail.startswith(":"):
                raise InvalidUri(f"junk after IPv6 reference in {whole!r}")
            port_text = tail[1:]
    else:
        host, colon, port_text = text.partition(":")
        if not colon:
            port_text = None
        if not host:
            raise InvalidUri(f"URI has no host: {whole!r}")
        if _IPV4.match(host):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise InvalidUri(f"bad IPv4 address in {whole!r}") from None
        elif not _HOSTNAME.match(host):
            raise InvalidUri(f"bad host {host!r} in {whole!r}")
        host = host.lower()
    port = None
    if port_text is not None:
        if not _DIGITS.fullmatch(port_text) or not 0 < int(port_text) < 65536:
            raise InvalidUri(f"bad port in {whole!r}")
        port = int(port_text)
    return host, port


def _parse_tel(rest: str, whole: str) -> TelUri:
    number, semi, paramtext = rest.partition(";")
    params = _parse_params(paramtext, whole) if semi else ()
    if _TEL_GLOBAL.match(number):
        return TelUri(number, params)
    has_context = any(k.lower() == "phone-context" for k, _ in params)
    if _TEL_LOCAL.match(number) and has_context:
        return TelUri(number, params)
    raise InvalidUri(f"bad tel number in {whole!r} (global +digits, or local with phone-context)")
