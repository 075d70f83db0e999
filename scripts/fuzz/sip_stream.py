"""Target: bytes of one TCP connection through the stream framer (sip_gateway/sip/framing.py).

Property: the framer raises nothing but a PeerError, and stays refused after one; the
same bytes fed at once and in small segments (of a size taken from the input's length)
give the same messages and keep-alives, or the same error; every message framed
serializes to bytes that parse to the same message.
"""

from __future__ import annotations

from sip_gateway.errors import PeerError
from sip_gateway.sip import KeepAlive, StreamFramer, parse_message

from scripts.fuzz import seeds

NAME = "sip_stream"
seed_inputs = seeds.sip_messages


def check(data: bytes) -> None:
    whole, whole_error = _framed([data])
    size = 1 + len(data) % 97
    pieces, pieces_error = _framed([data[i : i + size] for i in range(0, len(data), size)])
    assert type(whole_error) is type(pieces_error), (whole_error, pieces_error)
    if whole_error is None:
        assert whole == pieces, (whole, pieces)


def _framed(chunks: list[bytes]) -> tuple[list[bytes], PeerError | None]:
    framer = StreamFramer()
    events: list[bytes] = []
    for chunk in chunks:
        try:
            found = framer.feed(chunk)
        except PeerError as error:
            _stays_refused(framer)
            return events, error
        for event in found:
            events.append(_wire(event))
    return events, None


def _wire(event) -> bytes:
    if isinstance(event, KeepAlive):
        return b"ping" if event.ping else b"pong"
    wire = event.serialize()
    assert parse_message(wire).serialize() == wire, wire
    return wire


def _stays_refused(framer: StreamFramer) -> None:
    try:
        framer.feed(b"\r\n\r\n")
    except PeerError:
        return
    raise AssertionError("a framer took bytes after its stream broke")
