"""Cutting a TCP/TLS byte stream into SIP messages and keep-alives (RFC 3261 18.3, RFC 5626).

Theory of operation: the framer alternates between two states.
- At a message boundary it first reads CRLFs: a double CRLF is a keep-alive ping that the
  server answers with one CRLF, a single CRLF is that pong (RFC 5626 3.5.1, 4.4.1); a lone
  LF is skipped (RFC 3261 7.5). A CRLF still alone at the end of the bytes received so far
  may be half of a ping, so it waits for the next byte. Then it looks for the empty line
  that ends the header section; once found, `parse_head` checks it and its Content-Length,
  which a stream message must carry (RFC 3261 18.3, 20.14).
- With a head in hand it waits for exactly Content-Length body bytes, emits the message
  and returns to the boundary.
Nothing is buffered past the caps: header bytes above `max_header_bytes` without an empty
line, or a Content-Length above `max_body_bytes`, raise MessageTooLarge as soon as seen.
Any error is final: the bytes that follow can no longer be framed, so the connection must
be closed, and every later `feed` says so by raising again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sip_gateway.errors import MalformedMessage, MessageTooLarge, PeerError
from sip_gateway.sip.message import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    Head,
    SipMessage,
    find_head_end,
    parse_head,
)

PING = b"\r\n\r\n"
_LINE_FEEDS = re.compile(rb"\n*")
PONG = b"\r\n"


@dataclass(frozen=True)
class KeepAlive:
    """CRLF keep-alive between messages (RFC 5626 3.5.1); answer a `ping` with PONG."""

    ping: bool


StreamEvent = SipMessage | KeepAlive


class StreamFramer:
    """Bytes of one connection in, SIP messages and keep-alives out (RFC 3261 18.3)."""

    def __init__(
        self, *, max_header_bytes: int = MAX_HEADER_BYTES, max_body_bytes: int = MAX_BODY_BYTES
    ) -> None:
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self._buffer = bytearray()
        self.failed_bytes = b""  # the start of the message that broke the stream, if any
        self._scanned = 0  # bytes of the header section already searched for its end
        self._head: Head | None = None  # a head waiting for its body
        self._error: PeerError | None = None

    @property
    def error(self) -> PeerError | None:
        """The error that made this framer unusable, if any."""
        return self._error

    @property
    def buffered(self) -> int:
        """Bytes held for a message not complete yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[StreamEvent]:
        """Add received bytes; return the messages and keep-alives they complete, in order."""
        if self._error is not None:
            raise type(self._error)(f"stream unusable after an earlier error: {self._error}")
        self._buffer += data
        events: list[StreamEvent] = []
        try:
            while (event := self._next()) is not None:
                events.append(event)
        except PeerError as error:
            self._error = error
            self.failed_bytes = bytes(self._buffer[: self.max_header_bytes + 4])
            self._buffer = bytearray()
            self._head = None
            raise
        return events

    def _next(self) -> StreamEvent | None:
        buffer = self._buffer
        if self._head is None:
            keepalive = self._keepalive()
            if keepalive is not None:
                return keepalive
            if len(buffer) < 4 and PING.startswith(buffer):
                return None  # nothing yet, or maybe the first half of a ping
            end = find_head_end(buffer, max(0, self._scanned - 3), self.max_header_bytes + 4)
            if end is None or end[0] > self.max_header_bytes:
                if len(buffer) > self.max_header_bytes:
                    raise MessageTooLarge(f"header section above {self.max_header_bytes} bytes")
                self._scanned = len(buffer)
                return None
            head = parse_head(bytes(buffer[: end[0]]), max_body_bytes=self.max_body_bytes)
            if head.content_length is None:
                raise MalformedMessage("no Content-Length on a stream transport (RFC 3261 18.3)")
            del buffer[: end[1]]
            self._head, self._scanned = head, 0
        length = self._head.content_length or 0
        if len(buffer) < length:
            return None
        message = self._head.with_body(bytes(buffer[:length]))
        del buffer[:length]
        self._head = None
        return message

    def _keepalive(self) -> KeepAlive | None:
        buffer = self._buffer
        if buffer[:1] == b"\n":
            del buffer[: _LINE_FEEDS.match(buffer).end()]  # type: ignore[union-attr]
        if buffer[:1] != b"\r":
            return None
        if buffer[:4] == PING:
            del buffer[:4]
            return KeepAlive(ping=True)
        if buffer[:2] == PONG and not (len(buffer) < 4 and PING.startswith(buffer)):
            del buffer[:2]
            return KeepAlive(ping=False)
        return None
