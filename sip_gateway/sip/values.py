"""Typed values of the headers this service reads; each `parse` raises MalformedMessage."""

from __future__ import annotations

import re
from dataclasses import dataclass

from domain.binding import MAX_CSEQ
from sip_gateway.errors import MalformedMessage
from sip_gateway.sip.addresses import NameAddr, Via
from sip_gateway.sip.grammar import (
    TOKEN_CHARS,
    Params,
    find_param,
    format_params,
    is_token,
    parse_params,
    show,
)

__all__ = [
    "CSeq", "ContentType", "ETag", "Event", "NameAddr", "SubscriptionState", "Via",
    "parse_delta_seconds",
]

MAX_FORWARDS = 70  # what a request we originate starts with (RFC 3261 8.1.1.6)
VIA_TRANSPORTS = ("UDP", "TCP", "TLS", "SCTP", "WS", "WSS")  # RFC 3261 20.42, RFC 7118
MAX_DELTA_SECONDS = 2**32 - 1
REGINFO = "application/reginfo+xml"

_DIGITS = re.compile(r"[0-9]+")
_CSEQ = re.compile(rf"[ \t]*([0-9]+)[ \t]+([{TOKEN_CHARS}]+)[ \t]*")
_HEAD = re.compile(rf"[ \t]*([{TOKEN_CHARS}]+)[ \t]*")
_MEDIA = re.compile(rf"[ \t]*([{TOKEN_CHARS}]+)[ \t]*/[ \t]*([{TOKEN_CHARS}]+)[ \t]*")


def _number(text: str, limit: int, what: str, header: str) -> int:
    text = text.strip(" \t")
    if _DIGITS.fullmatch(text) is None:
        raise MalformedMessage(f"{what} in {header} header is not a number: {show(text)}")
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(limit)) or int(digits) > limit:
        raise MalformedMessage(f"{what} in {header} header above {limit}: {show(text)}")
    return int(digits)


def parse_delta_seconds(text: str, header: str = "Expires") -> int:
    """delta-seconds, 0..2**32-1 (RFC 3261 20.19 Expires, 20.23 Min-Expires, 25.1)."""
    return _number(text, MAX_DELTA_SECONDS, "delta-seconds", header)


def _split_head(text: str, pattern: re.Pattern[str], header: str) -> tuple[re.Match[str], Params]:
    semi = text.find(";")
    head, tail = (text, "") if semi < 0 else (text[:semi], text[semi:])
    match = pattern.fullmatch(head)
    if match is None:
        raise MalformedMessage(f"bad {header} header: {show(text)}")
    return match, parse_params(tail, header)


def _take(params: Params, names: tuple[str, ...], header: str) -> tuple[dict[str, str], Params]:
    """Pull the named parameters out (unquoted, once each); return them and the others."""
    taken: dict[str, str] = {}
    rest = []
    for key, value in params:
        lowered = key.lower()
        if lowered not in names:
            rest.append((key, value))
        elif lowered in taken:
            raise MalformedMessage(f"parameter {lowered} twice in {header} header")
        else:
            taken[lowered] = find_param(((key, value),), key) or ""
    return taken, tuple(rest)


@dataclass(frozen=True)
class CSeq:
    """`number method`, number 0..2**31-1 (RFC 3261 20.16, 8.1.1.5)."""

    number: int
    method: str

    @classmethod
    def parse(cls, text: str, header: str = "CSeq") -> CSeq:
        match = _CSEQ.fullmatch(text)
        if match is None:
            raise MalformedMessage(f"bad {header} header (want 'number METHOD'): {show(text)}")
        digits = match[1]
        number = int(digits) if len(digits) < 10 else _number(  # under 10 digits: < 2**31
            digits, MAX_CSEQ, "sequence number", header)
        return cls(number, match[2])

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


@dataclass(frozen=True)
class Event:
    """`package *(;param)` with the `id` parameter; package lower-cased (RFC 6665 8.2.1)."""

    package: str
    id: str | None = None
    params: Params = ()  # every parameter but id

    @classmethod
    def parse(cls, text: str, header: str = "Event") -> Event:
        match, params = _split_head(text, _HEAD, header)
        taken, rest = _take(params, ("id",), header)
        event_id = taken.get("id")
        if event_id is not None and not is_token(event_id):
            raise MalformedMessage(f"bad id parameter in {header} header: {show(event_id)}")
        return cls(match[1].lower(), event_id, rest)

    def is_package(self, name: str) -> bool:
        return self.package == name.lower()

    def param(self, name: str) -> str | None:
        return self.id if name.lower() == "id" else find_param(self.params, name)

    def __str__(self) -> str:
        event_id = "" if self.id is None else f";id={self.id}"
        return f"{self.package}{event_id}{format_params(self.params)}"


@dataclass(frozen=True)
class SubscriptionState:
    """`active|pending|terminated|ext ;reason ;expires ;retry-after` (RFC 6665 4.1.3, 8.2.3)."""

    state: str
    reason: str | None = None
    expires: int | None = None
    retry_after: int | None = None
    params: Params = ()  # every other parameter

    @classmethod
    def parse(cls, text: str, header: str = "Subscription-State") -> SubscriptionState:
        match, params = _split_head(text, _HEAD, header)
        taken, rest = _take(params, ("reason", "expires", "retry-after"), header)
        reason = taken.get("reason")
        if reason is not None and not is_token(reason):
            raise MalformedMessage(f"bad reason in {header} header: {show(reason)}")
        expires, retry_after = (
            None if name not in taken else _number(taken[name], MAX_DELTA_SECONDS, name, header)
            for name in ("expires", "retry-after")
        )
        return cls(match[1].lower(), reason and reason.lower(), expires, retry_after, rest)

    def __str__(self) -> str:
        text = self.state
        for name, value in (("reason", self.reason), ("expires", self.expires),
                            ("retry-after", self.retry_after)):
            if value is not None:
                text += f";{name}={value}"
        return text + format_params(self.params)


@dataclass(frozen=True)
class ContentType:
    """`type/subtype *(;param)`, type and subtype lower-cased (RFC 3261 20.15)."""

    type: str
    subtype: str
    params: Params = ()

    @classmethod
    def parse(cls, text: str, header: str = "Content-Type") -> ContentType:
        match, params = _split_head(text, _MEDIA, header)
        return cls(match[1].lower(), match[2].lower(), params)

    @property
    def mime(self) -> str:
        return f"{self.type}/{self.subtype}"

    @property
    def is_reginfo(self) -> bool:
        """application/reginfo+xml, the RFC 3680 5.3 body type."""
        return self.mime == REGINFO

    def param(self, name: str) -> str | None:
        return find_param(self.params, name)

    def __str__(self) -> str:
        return self.mime + format_params(self.params)


@dataclass(frozen=True)
class ETag:
    """An entity-tag of SIP-ETag / SIP-If-Match, compared exactly (RFC 3903 11.3.1)."""

    value: str

    @classmethod
    def parse(cls, text: str, header: str = "SIP-ETag") -> ETag:
        value = text.strip(" \t")
        if not is_token(value):
            raise MalformedMessage(f"bad {header} header (want a token): {show(text)}")
        return cls(value)

    def __str__(self) -> str:
        return self.value
