"""SIP parser throughput: messages per second for a Kamailio NOTIFY and a typical REGISTER.

    python3 bench/sip_parse.py [--messages 20000] [--rounds 7]

Rows: `parse_message` on one datagram (start line, headers, Content-Length, mandatory
headers and CSeq checked); the same plus the typed values a handler reads (Via, From, To,
CSeq, Contact, Event, Subscription-State, Content-Type, Expires); and `StreamFramer.feed`
with the message arriving in one TCP chunk. Medians over rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sip_gateway.sip import (  # noqa: E402
    ContentType,
    CSeq,
    Event,
    NameAddr,
    StreamFramer,
    SubscriptionState,
    Via,
    parse_delta_seconds,
    parse_message,
)

NOTIFY = (ROOT / "tests/fixtures/kamailio-5.6/notify-cases/01-new-contact.sip").read_bytes()
# A sipp REGISTER of the Kamailio lab (A-register-publish, second device), 2 Vias as via a proxy.
REGISTER = (
    b"REGISTER sip:example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-proxy-1;rport=5060;received=192.0.2.10\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5091;branch=z9hG4bK-6658-1-0;rport\r\n"
    b"Max-Forwards: 69\r\n"
    b"From: <sip:alice@example.com>;tag=6658-1\r\n"
    b"To: <sip:alice@example.com>\r\n"
    b"Call-ID: lab-alice-dev2@127.0.0.1\r\n"
    b"CSeq: 1 REGISTER\r\n"
    b"Contact: <sip:alice@127.0.0.1:5093;transport=udp>;q=0.5;"
    b'+sip.instance="<urn:uuid:00000000-0000-1000-8000-000000000002>";reg-id=1\r\n'
    b"Expires: 1800\r\n"
    b"Supported: path, outbound, gruu\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, SUBSCRIBE, NOTIFY\r\n"
    b"User-Agent: sipp-lab-ua dev2\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


def parse_only(data: bytes) -> object:
    return parse_message(data)


def parse_and_read(data: bytes) -> object:
    message = parse_message(data)
    headers = message.headers
    values: list[object] = [Via.parse(v) for v in headers.get_all("Via")]
    values += [NameAddr.parse(headers.get(name) or "") for name in ("From", "To")]
    values += [NameAddr.parse(c) for c in headers.get_all("Contact")]
    values.append(CSeq.parse(headers.get("CSeq") or ""))
    for name, kind in (("Event", Event), ("Subscription-State", SubscriptionState),
                       ("Content-Type", ContentType)):
        if (text := headers.get(name)) is not None:
            values.append(kind.parse(text))
    if (expires := headers.get("Expires")) is not None:
        values.append(parse_delta_seconds(expires))
    return values


def frame(data: bytes) -> object:
    return StreamFramer().feed(data)


def rate(work: Callable[[bytes], object], data: bytes, messages: int) -> float:
    started = time.perf_counter()
    for _ in range(messages):
        work(data)
    return messages / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"{'work':<28} {'NOTIFY 01 msg/s':>16} {'REGISTER msg/s':>15}  "
          f"(median of {args.rounds} x {args.messages})")
    for label, work in (("parse_message", parse_only), ("parse + typed values", parse_and_read),
                        ("StreamFramer.feed (1 chunk)", frame)):
        row = []
        for data in (NOTIFY, REGISTER):
            work(data)  # warm up, and fail loudly before timing if the sample does not parse
            rates = [rate(work, data, args.messages) for _ in range(args.rounds)]
            row.append(statistics.median(rates))
        print(f"{label:<28} {row[0]:>16,.0f} {row[1]:>15,.0f}")


if __name__ == "__main__":
    main()
