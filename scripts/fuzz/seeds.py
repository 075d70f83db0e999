"""Seed inputs: the Kamailio 5.6 captures in tests/fixtures and the hostile corpus of
the e2e tests (every message at most MAX_SEED bytes, so that libFuzzer's inputs stay
small and fast)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.hostile_corpus import build_corpus, register

ROOT = Path(__file__).resolve().parents[2]
KAMAILIO = ROOT / "tests/fixtures/kamailio-5.6"
MAX_SEED = 8192
REPLY_PORT = 5999  # the port the hostile corpus writes into its Vias (loopback only)


def sip_messages() -> list[bytes]:
    """Every captured SIP message (REGISTER, NOTIFY, PUBLISH, SUBSCRIBE, responses) and
    the hostile datagrams and TCP streams."""
    corpus = build_corpus(REPLY_PORT)
    found = [path.read_bytes() for path in sorted(KAMAILIO.rglob("*.sip"))]
    found += [datagram.data for datagram in corpus.datagrams]
    found += [b"".join(stream.chunks) for stream in corpus.streams]
    return _small(found)


# Valid REGISTERs beside the captured ones: each a step of RFC 3261 10.3 the mapping takes.
REGISTER_VARIANTS = (
    {},
    {"Contact": "*", "Expires": "0"},
    {"Contact": "<sip:a@127.0.0.1:5999>;expires=0, <sip:b@127.0.0.1:5998>;q=0.5"},
    {"Contact": '<sip:a@127.0.0.1:5999>;+sip.instance="<urn:uuid:1>";reg-id=1;methods="INVITE"',
     "Supported": "path", "Path": "<sip:127.0.0.1:5070;lr>"},
    {"Contact": None},
    {"To": "<tel:+15550100>", "Expires": "86400"},
    {"Contact": "<sip:a@127.0.0.1:5999>;expires=30"},
)


def registers() -> list[bytes]:
    """The captured REGISTERs, the hostile ones, and REGISTER_VARIANTS."""
    found = [message for message in sip_messages() if message.lstrip(b"\r\n")[:9] == b"REGISTER "]
    return found + [register(n, REPLY_PORT, **{name.replace("-", "_"): value
                                                for name, value in variant.items()})
                    for n, variant in enumerate(REGISTER_VARIANTS)]


def reginfo_bodies() -> list[bytes]:
    """The bodies of the captured NOTIFYs and PUBLISHes and of the hostile NOTIFYs."""
    bodies = []
    for message in sip_messages():
        if message.lstrip(b"\r\n")[:7] not in (b"NOTIFY ", b"PUBLISH"):
            continue
        head, separator, body = message.partition(b"\r\n\r\n")
        if separator and body.strip():
            bodies.append(body)
    return _small(bodies)


def _small(items: list[bytes]) -> list[bytes]:
    return list(dict.fromkeys(item for item in items if len(item) <= MAX_SEED))
