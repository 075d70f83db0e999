"""Address header values: name-addr / addr-spec (From, To, Contact, Route) and Via."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache

from domain.errors import InvalidUri
from domain.uri import Uri, parse_uri
from sip_gateway.errors import MalformedMessage
from sip_gateway.sip.grammar import (
    QUOTED_STRING,
    TOKEN_CHARS,
    Params,
    find_param,
    format_params,
    has_param,
    is_token,
    parse_params,
    quote,
    show,
    unquote,
)

_QUOTED = re.compile(f"[ \t]*({QUOTED_STRING})[ \t]*")
_VIA = re.compile(
    rf"[ \t]*([{TOKEN_CHARS}]+)[ \t]*/[ \t]*([{TOKEN_CHARS}]+)[ \t]*/[ \t]*([{TOKEN_CHARS}]+)"
    r"[ \t]+([^;]+?)[ \t]*(;.*)?",
    re.DOTALL,
)
_SENT_BY = re.compile(r"[A-Za-z0-9\-._\[\]:]+")
_COLON_LWS = re.compile(r"[ \t]*:[ \t]*")


def _uri(text: str, header: str) -> Uri:
    try:
        return parse_uri(text)
    except InvalidUri as error:
        raise MalformedMessage(f"bad URI in {header} header: {error}") from None


@dataclass(frozen=True)
class NameAddr:
    """`[display-name] <uri> *(;param)` or a bare addr-spec (RFC 3261 20.10, 20.20, 20.39)."""

    uri: Uri
    display_name: str | None = None
    params: Params = ()

    @classmethod
    def parse(cls, text: str, header: str = "From/To/Contact") -> NameAddr:
        return _parse_name_addr(cls, text, header)

    @classmethod
    def _parse(cls, text: str, header: str) -> NameAddr:
        display: str | None = None
        rest = text.strip(" \t")
        if rest.startswith('"'):
            match = _QUOTED.match(rest)
            if match is None:
                raise MalformedMessage(
                    f"unterminated display name in {header} header: {show(text)}")
            display = unquote(match[1])
            rest = rest[match.end() :]
            if not rest.startswith("<"):
                raise MalformedMessage(
                    f"display name without <URI> in {header} header: {show(text)}")
        else:
            lt = rest.find("<")
            if lt < 0 or (lt and any(char in rest[:lt] for char in ':";,>')):
                return cls._parse_addr_spec(rest, header)
            if lt:  # a display name of tokens before the `<`
                display = rest[:lt].strip(" \t") or None
                rest = rest[lt:]
        gt = rest.find(">")
        if gt < 0:
            raise MalformedMessage(f"'<' without '>' in {header} header: {show(text)}")
        tail = rest[gt + 1 :].strip(" \t")
        if tail and not tail.startswith(";"):
            raise MalformedMessage(f"junk after '>' in {header} header: {show(tail)}")
        return cls(_uri(rest[1:gt], header), display, parse_params(tail, header))

    @classmethod
    def _parse_addr_spec(cls, text: str, header: str) -> NameAddr:
        # Without angle brackets every ';' parameter belongs to the header (RFC 3261 20.10).
        semi = text.find(";")
        if semi < 0:
            return cls(_uri(text, header))
        return cls(_uri(text[:semi], header), None, parse_params(text[semi:], header))

    @property
    def tag(self) -> str | None:
        return find_param(self.params, "tag")

    def param(self, name: str) -> str | None:
        """A header parameter's unquoted value; "" for a flag, None when absent."""
        return find_param(self.params, name)

    def __str__(self) -> str:
        display = "" if self.display_name is None else quote(self.display_name) + " "
        return f"{display}<{self.uri}>{format_params(self.params)}"


@dataclass(frozen=True)
class Via:
    """One via-parm: `SIP/2.0/UDP host[:port];branch=...` (RFC 3261 20.42, RFC 3581 rport)."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()
    protocol: str = "SIP/2.0"

    @classmethod
    def parse(cls, text: str, header: str = "Via") -> Via:
        match = _VIA.fullmatch(text)
        if match is None:
            raise MalformedMessage(f"bad {header} header: {show(text)}")
        name, version, transport, sent_by, tail = match.groups()
        host, port = _sent_by(sent_by, header)
        params = parse_params(tail or "", header)
        via = cls(transport.upper(), host, port, params, f"{name.upper()}/{version}")
        via._check(header)
        return via

    def _check(self, header: str) -> None:
        raw = {key.lower(): value for key, value in reversed(self.params)}
        if "branch" in raw and not is_token(raw["branch"] or ""):
            raise MalformedMessage(f"bad branch in {header} header: {show(raw['branch'] or '')}")
        if "received" in raw:
            received = raw["received"] or ""
            try:
                ipaddress.ip_address(received.strip("[]"))
            except ValueError:
                raise MalformedMessage(
                    f"received is not an IP address in {header} header: {show(received)}"
                ) from None
        rport = raw.get("rport")
        if rport is not None and not (rport.isascii() and rport.isdigit()
                                      and len(rport) <= 5 and 0 < int(rport) < 65536):
            raise MalformedMessage(f"bad rport in {header} header: {show(rport)}")

    @property
    def branch(self) -> str | None:
        return find_param(self.params, "branch")

    @property
    def received(self) -> str | None:
        return find_param(self.params, "received")

    @property
    def has_rport(self) -> bool:
        """`rport` present, with or without a value (RFC 3581 4: the client asks for it)."""
        return has_param(self.params, "rport")

    @property
    def rport(self) -> int | None:
        """The rport value a server filled in (RFC 3581 4), None for the bare flag."""
        value = find_param(self.params, "rport")
        return int(value) if value else None

    def param(self, name: str) -> str | None:
        return find_param(self.params, name)

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"


@lru_cache(maxsize=4096)
def _sent_by(text: str, header: str) -> tuple[str, int | None]:
    """The host and port of a Via sent-by, once per text (a peer sends from a few;
    refusals are not cached)."""
    sent_by = _COLON_LWS.sub(":", text)
    if _SENT_BY.fullmatch(sent_by) is None:
        raise MalformedMessage(f"bad sent-by in {header} header: {show(sent_by)}")
    try:
        where = parse_uri("sip:" + sent_by)
    except InvalidUri as error:
        raise MalformedMessage(f"bad sent-by in {header} header: {error}") from None
    return where.host, where.port


@lru_cache(maxsize=16384)
def _parse_name_addr(cls: type[NameAddr], text: str, header: str) -> NameAddr:
    """NameAddr.parse, once per text: name-addrs are immutable values, and one request
    parses its From, To and Contact several times (refusals are not cached)."""
    return cls._parse(text, header)
