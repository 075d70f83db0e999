"""A TCP stream cut into SIP messages and RFC 5626 keep-alives, within fixed caps."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sip_gateway.errors import MalformedMessage, MessageTooLarge, PeerError
from sip_gateway.sip import KeepAlive, StreamFramer, parse_message
from tests.unit.test_sip_message import FIXTURES, REGISTER, register, sip_messages

NOTIFY = FIXTURES[0].read_bytes()
OK = b"SIP/2.0 200 OK\r\nCall-ID: x\r\nContent-Length: 5\r\n\r\nhello"
PING, PONG = KeepAlive(ping=True), KeepAlive(ping=False)


def test_several_messages_and_keep_alives_in_one_chunk_come_out_in_order():
    framer = StreamFramer()
    events = framer.feed(NOTIFY + b"\r\n\r\n" + REGISTER + OK + b"\r\n" + REGISTER)
    assert events == [parse_message(NOTIFY), PING, parse_message(REGISTER), parse_message(OK),
                      PONG, parse_message(REGISTER)]
    assert framer.buffered == 0


def test_a_message_split_byte_by_byte_comes_out_once_whole():
    framer = StreamFramer()
    stream = NOTIFY + OK
    events = [event for byte in stream for event in framer.feed(bytes([byte]))]
    assert events == [parse_message(NOTIFY), parse_message(OK)]


def test_a_ping_split_in_two_is_still_one_ping():
    framer = StreamFramer()
    assert framer.feed(b"\r\n") == []  # could be half a ping: wait
    assert framer.feed(b"\r") == []
    assert framer.feed(b"\n") == [PING]
    assert framer.feed(b"\r\n" + OK[:10]) == [PONG]  # a CRLF before a message is a pong


def test_lone_line_feeds_between_messages_are_ignored():
    assert StreamFramer().feed(b"\n\n" + OK + b"\n") == [parse_message(OK)]


def test_a_message_waits_for_all_of_its_body():
    framer = StreamFramer()
    assert framer.feed(OK[:-1]) == []
    assert framer.buffered == 4  # the head is parsed and dropped; the body waits
    assert framer.feed(OK[-1:]) == [parse_message(OK)]


def test_a_stream_message_without_content_length_ends_the_connection():
    framer = StreamFramer()
    with pytest.raises(MalformedMessage, match="no Content-Length on a stream"):
        framer.feed(register("Content-Length"))
    assert isinstance(framer.error, MalformedMessage) and framer.buffered == 0
    with pytest.raises(MalformedMessage, match="unusable after an earlier error"):
        framer.feed(REGISTER)


def test_a_malformed_head_on_a_stream_is_a_peer_error_too():
    with pytest.raises(MalformedMessage, match="bad request line"):
        StreamFramer().feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")


def test_an_oversized_header_is_refused_without_being_kept():
    framer = StreamFramer(max_header_bytes=1_000)
    with pytest.raises(MessageTooLarge, match="header section above 1000 bytes"):
        framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\nX: " + b"a" * 1_048_576)
    assert framer.buffered == 0


def test_slowloris_header_bytes_one_at_a_time_stop_at_the_cap():
    framer = StreamFramer(max_header_bytes=1_000)
    stream = b"OPTIONS sip:a@b SIP/2.0\r\nX-Slow: " + b"z" * 2_000
    for count, byte in enumerate(stream, start=1):
        if count > 1_000:
            with pytest.raises(MessageTooLarge) as caught:
                framer.feed(bytes([byte]))
            assert caught.value.sip_status == 513
            break
        assert framer.feed(bytes([byte])) == []
        assert framer.buffered == count <= 1_000
    assert count == 1_001 and framer.buffered == 0


def test_a_content_length_above_the_body_cap_is_refused_before_the_body_arrives():
    framer = StreamFramer(max_body_bytes=100)
    head = register("Content-Length", extra=b"Content-Length: 101\r\n")
    with pytest.raises(MessageTooLarge, match="Content-Length '101' above 100 bytes"):
        framer.feed(head)


@given(st.lists(st.binary(max_size=64), max_size=12))
@settings(max_examples=500)
def test_any_chunks_either_frame_or_raise_a_peer_error_and_then_stay_failed(chunks):
    framer = StreamFramer(max_header_bytes=256, max_body_bytes=256)
    for chunk in chunks:
        try:
            events = framer.feed(chunk)
        except PeerError:
            assert framer.error is not None and framer.buffered == 0
            with pytest.raises(PeerError):
                framer.feed(b"\r\n\r\n")
            return
        assert all(isinstance(event, KeepAlive) or event.headers is not None for event in events)
        assert framer.buffered <= 256 + 4


@given(st.lists(sip_messages(), min_size=1, max_size=5), st.data())
@settings(max_examples=200)
def test_serialized_messages_cut_anywhere_come_out_as_sent(cases, data):
    messages = [parse_message(wire) for _, wire in cases]
    stream = b"".join(message.serialize() for message in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    framer = StreamFramer()
    events = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)]):
        events += framer.feed(stream[start:end])
    assert events == messages and framer.buffered == 0
