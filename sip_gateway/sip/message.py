"""SIP requests and responses as values; parsing one datagram and serializing (RFC 3261 7).

Theory of operation: a message is a start line, header lines up to the first empty line,
and a body. `parse_head` turns the header section into a `Head` (start line, `Headers`,
Content-Length) and checks what every later layer relies on; `Head.with_body` makes the
message. `parse_message` does both for a datagram; the stream framer calls them separately
because on TCP the Content-Length decides where the message ends (RFC 3261 18.3).
Header values stay text; `values.py` parses the few this service reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sip_gateway.errors import MalformedMessage, MessageTooLarge, VersionNotSupported
from sip_gateway.sip.grammar import TOKEN_CHARS, show, split_list
from sip_gateway.sip.headers import KNOWN_KEYS, Headers, header_key
from sip_gateway.sip.addresses import NameAddr, Via
from sip_gateway.sip.values import CSeq

MAX_HEADER_BYTES = 16_384
MAX_BODY_BYTES = 1_048_576
SIP_2_0 = "SIP/2.0"

MANDATORY_REQUEST_HEADERS = ("To", "From", "CSeq", "Call-ID", "Via")  # RFC 3261 8.1.1
_MANDATORY_KEYS = tuple((name, name.lower()) for name in MANDATORY_REQUEST_HEADERS)
SINGLE_HEADERS = ("To", "From", "CSeq", "Call-ID", "Max-Forwards", "Content-Type")
_SINGLE_KEYS = tuple((name, name.lower()) for name in SINGLE_HEADERS)

_EMPTY_LINE = re.compile(rb"\n\r?\n")  # from the last line's LF, so that the search is fast
_LEADING_NEWLINES = re.compile(rb"(?:\r?\n)*")
_BAD_CHAR = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_QUOTED_PAIRS = re.compile(r"\\[^\r\n]")  # a quoted-pair may quote a control (RFC 3261 25.1)
_NAME = re.compile(f"[{TOKEN_CHARS}]+")
# Request-Line = Method SP Request-URI SP SIP-Version; extra SPs between and after the
# elements are tolerated (RFC 4475 3.1.2.9, 3.1.2.10 allow either).
_REQUEST_LINE = re.compile(rf"([{TOKEN_CHARS}]+) +(\S+) +([Ss][Ii][Pp]/\S+) *")
# An absolute URI (RFC 3261 25.1, RFC 3986 3.1) without the brackets of a name-addr.
_REQUEST_URI = re.compile(r'[A-Za-z][A-Za-z0-9+.\-]*:[^<>"]+')
_STATUS_LINE = re.compile(r"([Ss][Ii][Pp]/\S+) +([0-9]{3})(?: (.*))?")
_VERSION = re.compile(r"SIP/[0-9]+\.[0-9]+")
_BAD_START_TEXT = re.compile(r"[\x00-\x1f\x7f]")
_URI_TEXT = re.compile(r"[^\s\x00-\x1f\x7f]+")
_Value = TypeVar("_Value")


class _ParsedOnce(Generic[_Value]):
    """A header value parsed on first access and kept in the message's __dict__ (where
    later lookups find it first): functools.cached_property without its lock (3.11)."""

    def __init__(self, parse: Callable[[Any], _Value]) -> None:
        self.parse, self.name = parse, parse.__name__

    def __get__(self, message: Any, owner: type | None = None) -> _Value:
        if message is None:
            return self  # type: ignore[return-value]  # the descriptor, asked on the class
        value = message.__dict__[self.name] = self.parse(message)
        return value


class HeaderValues:
    """Header values a message parses once, when first asked (each raises
    MalformedMessage if unreadable; `headers` is the message's)."""

    headers: Headers

    @_ParsedOnce
    def top_via(self) -> Via:
        return Via.parse(self.headers.get("Via") or "")

    @_ParsedOnce
    def from_addr(self) -> NameAddr:
        return NameAddr.parse(self.headers.get("From") or "", "From")

    @_ParsedOnce
    def to_addr(self) -> NameAddr:
        return NameAddr.parse(self.headers.get("To") or "", "To")

    @_ParsedOnce
    def cseq(self) -> CSeq:
        return CSeq.parse(self.headers.get("CSeq") or "")


@dataclass(frozen=True)
class SipRequest(HeaderValues):
    """A request: `METHOD Request-URI SIP/2.0`, headers and body (RFC 3261 7.1)."""

    method: str
    uri: str
    version: str = SIP_2_0
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def __post_init__(self) -> None:
        if _NAME.fullmatch(self.method) is None:
            raise ValueError(f"not a SIP method: {self.method!r}")
        if _URI_TEXT.fullmatch(self.uri) is None:
            raise ValueError(f"not a Request-URI: {self.uri!r}")
        _check_version(self.version)

    @classmethod
    def trusted(cls, method: str, uri: str, version: str, headers: Headers, body: bytes,
                **parsed: object) -> SipRequest:
        """A request from parts the parser already checked (no validation again), with
        header values already parsed (`top_via`, `cseq`) given as they are."""
        request = object.__new__(cls)
        request.__dict__.update(method=method, uri=uri, version=version, headers=headers,
                                body=body, **parsed)
        return request

    def remember(self, **parsed: object) -> SipRequest:
        """This request, with header values its builder already parsed (`top_via`,
        `cseq`) kept instead of being parsed again; returns the request."""
        self.__dict__.update(parsed)
        return self

    def start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"

    def serialize(self) -> bytes:
        """Wire bytes with CRLF line ends and Content-Length set from the body."""
        return _wire(self.start_line(), self.headers, self.body)


@dataclass(frozen=True)
class SipResponse(HeaderValues):
    """A response: `SIP/2.0 status reason`, headers and body (RFC 3261 7.2)."""

    status: int
    reason: str
    version: str = SIP_2_0
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def __post_init__(self) -> None:
        if not isinstance(self.status, int) or not 100 <= self.status <= 699:
            raise ValueError(f"not a SIP status code: {self.status!r}")
        if _BAD_START_TEXT.search(self.reason) or self.reason != self.reason.strip(" "):
            raise ValueError(f"not a reason phrase: {self.reason!r}")
        _check_version(self.version)

    @classmethod
    def trusted(cls, status: int, reason: str, headers: Headers, body: bytes) -> SipResponse:
        """A SIP/2.0 response from a status and reason phrase known to be valid (our own
        table), without validating them again."""
        response = object.__new__(cls)
        response.__dict__.update(status=status, reason=reason, version=SIP_2_0,
                                 headers=headers, body=body)
        return response

    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    def serialize(self) -> bytes:
        """Wire bytes with CRLF line ends and Content-Length set from the body."""
        return _wire(self.start_line(), self.headers, self.body)


SipMessage = SipRequest | SipResponse


def _check_version(version: str) -> None:
    if _VERSION.fullmatch(version) is None:
        raise ValueError(f"not a SIP version: {version!r}")


def _wire(start_line: str, headers: Headers, body: bytes) -> bytes:
    lines = [start_line]
    length_written = False
    for key, name, value in headers.wire():
        if key == "content-length":
            if length_written:
                continue
            value, length_written = str(len(body)), True
        lines.append(f"{name}: {value}")
    if not length_written:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("utf-8") + bytes(body)


@dataclass(frozen=True)
class Head:
    """A checked header section: start line fields, headers and Content-Length if given."""

    start: tuple[str, str, str]  # (method, uri, version) or (version, status, reason)
    is_request: bool
    headers: Headers
    content_length: int | None
    cseq: CSeq | None = None  # of a request, parsed while checking it

    def with_body(self, body: bytes) -> SipMessage:
        if self.is_request:
            method, uri, version = self.start
            return SipRequest.trusted(method, uri, version, self.headers, body, cseq=self.cseq)
        version, status, reason = self.start
        return SipResponse(int(status), reason, version, self.headers, body)


def parse_message(
    data: bytes, *, max_header_bytes: int = MAX_HEADER_BYTES, max_body_bytes: int = MAX_BODY_BYTES
) -> SipMessage:
    """One complete message, e.g. a UDP datagram (RFC 3261 7, 18.3); raises a PeerError."""
    data = bytes(data)
    start = _LEADING_NEWLINES.match(data).end()  # type: ignore[union-attr]  # RFC 3261 7.5
    end = find_head_end(data, start, start + max_header_bytes + 4)
    if end is None or end[0] - start > max_header_bytes:
        if len(data) - start > max_header_bytes:
            raise MessageTooLarge(f"header section above {max_header_bytes} bytes")
        if start == len(data):
            raise MalformedMessage("empty message")
        raise MalformedMessage("no empty line after the header section")
    head = parse_head(data[start : end[0]], max_body_bytes=max_body_bytes)
    rest = data[end[1] :]
    if head.content_length is None:
        if len(rest) > max_body_bytes:
            raise MessageTooLarge(f"body of {len(rest)} bytes above {max_body_bytes}")
        return head.with_body(rest)
    if head.content_length > len(rest):
        raise MalformedMessage(
            f"Content-Length {head.content_length} but only {len(rest)} body bytes"
        )
    return head.with_body(rest[: head.content_length])


def find_head_end(data: bytes | bytearray, pos: int, endpos: int) -> tuple[int, int] | None:
    """Where the first empty line is: (end of the header section, start of the body)."""
    match = _EMPTY_LINE.search(data, pos, endpos)
    if match is None:
        return None
    end = match.start()
    if end > 0 and data[end - 1] == 13:  # the CR of the last header line's CRLF
        end -= 1
    return end, match.end()


def parse_head(data: bytes, *, max_body_bytes: int = MAX_BODY_BYTES) -> Head:
    """The header section without its final empty line (RFC 3261 7.1-7.3); raises a PeerError."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedMessage(f"header section is not UTF-8 (byte {error.start})") from None
    text = text.replace("\r\n", "\n")
    bad = _BAD_CHAR.search(text)
    if bad is not None:  # outside a quoted-pair (RFC 4475 3.1.1.2 quotes NUL, BEL, DEL)
        bad = _BAD_CHAR.search(_QUOTED_PAIRS.sub("", text))
    if bad is not None or "\r" in text:
        char = "\r" if bad is None else bad[0]
        raise MalformedMessage(f"control character {char!r} in the header section")
    lines = text.split("\n")
    if _BAD_START_TEXT.search(lines[0]):
        raise MalformedMessage(f"control character in the start line: {show(lines[0])}")
    start, is_request = _start_line(lines[0])
    triples = _header_lines(lines)
    keys = [key for key, _, _ in triples]
    distinct = set(keys)
    if len(distinct) < len(keys):  # some header more than once: may it be?
        for name, key in _SINGLE_KEYS:
            if keys.count(key) > 1:
                raise MalformedMessage(f"{name} header more than once")
    content_length = None
    if "content-length" in distinct:
        lengths = {value for key, _, value in triples if key == "content-length"}
        content_length = _content_length(lengths, max_body_bytes)
    cseq = _check_request(start[0], triples) if is_request else None
    return Head(start, is_request, Headers._trusted(triples), content_length, cseq)


def _start_line(line: str) -> tuple[tuple[str, str, str], bool]:
    if line[:4].upper() == "SIP/":
        match = _STATUS_LINE.fullmatch(line)
        if match is None:
            raise MalformedMessage(f"bad status line: {show(line)}")
        version, status, reason = match[1], match[2], (match[3] or "").strip(" ")
        if not 100 <= int(status) <= 699:
            raise MalformedMessage(f"status code {status} outside 100..699")
        return (_version(version), status, reason), False
    match = _REQUEST_LINE.fullmatch(line)
    if match is None:
        raise MalformedMessage(f"bad request line: {show(line)}")
    _check_request_uri(match[2])
    return (match[1], match[2], _version(match[3])), True


def _check_request_uri(uri: str) -> None:
    """An absolute URI, not in <> (RFC 4475 3.1.2.7); a SIP or SIPS URI without headers,
    which RFC 3261 19.1.1 does not allow in a Request-URI (RFC 4475 3.1.2.11)."""
    if _REQUEST_URI.fullmatch(uri) is None:
        raise MalformedMessage(f"Request-URI is not an absolute URI: {show(uri)}")
    scheme, _, rest = uri.partition(":")
    hostport = rest.partition("@")[2] if "@" in rest else rest  # a user part may hold '?'
    if scheme.lower() in ("sip", "sips") and "?" in hostport:
        raise MalformedMessage(f"headers in a SIP Request-URI: {show(uri)}")


def _version(text: str) -> str:
    version = text.upper()
    if version == SIP_2_0:
        return version
    if _VERSION.fullmatch(version):
        raise VersionNotSupported(f"SIP version {text} not supported (only SIP/2.0)")
    raise MalformedMessage(f"bad SIP version: {show(text)}")


def _header_lines(lines: list[str]) -> list[tuple[str, str, str]]:
    triples: list[tuple[str, str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):  # folded continuation, RFC 3261 7.3.1
            if not triples:
                raise MalformedMessage("continuation line before the first header")
            key, name, value = triples[-1]
            more = line.strip(" \t")
            triples[-1] = (key, name, f"{value} {more}" if value and more else value + more)
            continue
        name, colon, value = line.partition(":")
        key = KNOWN_KEYS.get(name) if colon else None  # a name spelled as usual is valid
        if key is None:
            name = name.rstrip(" \t")
            if not colon or _NAME.fullmatch(name) is None:
                raise MalformedMessage(f"bad header line: {show(line)}")
            key = header_key(name)
        triples.append((key, name, value.strip(" \t")))
    return triples


def _content_length(values: set[str], max_body_bytes: int) -> int:
    if len(values) > 1:
        raise MalformedMessage("Content-Length header more than once with different values")
    text = values.pop()
    if not (text.isascii() and text.isdigit()):
        raise MalformedMessage(f"Content-Length is not a number: {show(text)}")
    digits = text.lstrip("0") or "0"
    if len(digits) > 12 or int(digits) > max_body_bytes:
        raise MessageTooLarge(f"Content-Length {show(text)} above {max_body_bytes} bytes")
    return int(digits)


def _check_request(method: str, triples: list[tuple[str, str, str]]) -> CSeq:
    first = {key: value for key, _, value in reversed(triples)}
    for name, key in _MANDATORY_KEYS:
        if not first.get(key):
            raise MalformedMessage(f"request without a {name} header (or an empty one)")
    # A first Via value without a comma is one item (values are stripped and not empty).
    if "," in first["via"] and not any(
            split_list(value) for key, _, value in triples if key == "via"):
        raise MalformedMessage("request without a Via header (or an empty one)")
    cseq = CSeq.parse(first["cseq"])
    if cseq.method != method:
        raise MalformedMessage(f"CSeq method {cseq.method} differs from request method {method}")
    max_forwards = first.get("max-forwards")
    if max_forwards is not None and not _small_number(max_forwards, 255):
        raise MalformedMessage(f"Max-Forwards is not 0..255: {show(max_forwards)}")
    return cseq


def _small_number(text: str, limit: int) -> bool:
    digits = text.lstrip("0") or ("0" if text else "")
    return digits.isascii() and digits.isdigit() and len(digits) <= 6 and int(digits) <= limit
