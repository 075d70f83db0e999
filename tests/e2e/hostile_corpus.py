"""A deterministic corpus of malformed and hostile SIP traffic for `serve` (UDP and TCP).

`build_corpus(reply_port)` returns the same corpus for the same seed and port: mutations
of a valid REGISTER and of a valid reginfo NOTIFY (truncation at every kind of boundary,
byte flips, header deletions and duplications, bad Content-Length, folding gone wrong,
huge header values, thousands of headers, NUL bytes, invalid UTF-8), random binary,
empty datagrams, CRLF floods, responses instead of requests, unknown methods, INVITE/ACK,
SIP/3.0 and valid NOTIFYs with hostile XML bodies (XXE, billion laughs, deep nesting).
The only address in any message is 127.0.0.1 (domains are example.com and evil.example,
which nothing resolves); the top Via carries `rport` and `reply_port`, so whatever the
gateway answers comes back to the sender and to no one else.

Every message is built to be refused: no item of the corpus may create a binding (byte
flips only write bytes that SIP and XML forbid everywhere: C0 controls but TAB/LF/CR,
lone UTF-8 continuation bytes and bytes that never start a UTF-8 sequence; a body is
only ever cut inside its root element, ...). Datagrams above 65,507 bytes (the UDP
payload limit) go over TCP, as streams.

`Datagram.expect` marks the sample of malformed but addressable requests (intact Via,
From, To, Call-ID and CSeq) whose answer is certain: that status with a Warning header.
`Datagram.silent` marks what must never be answered (responses, ACK). `bug_triggers` holds
the messages that hit gateway bugs this corpus found (fixed in 58452e1); the regression
tests of test_hostile_traffic.py send them one by one.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

HOST = "127.0.0.1"
UDP_MAX_PAYLOAD = 65_507
SEED = 3680
REGINFO_NS = "urn:ietf:params:xml:ns:reginfo"

# Bytes that are invalid in every part of a SIP message and of a reginfo body: C0 controls
# except TAB, LF and CR (not TEXT-UTF8, not XML Char), lone UTF-8 continuation bytes (the
# base messages are ASCII, so nothing can precede them as a lead byte), and bytes that
# never start a UTF-8 sequence. DEL (0x7f) is left out: XML 1.0 allows it.
FORBIDDEN_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20),
                         *range(0x80, 0xC2), *range(0xF5, 0x100)])


@dataclass(frozen=True)
class Datagram:
    """One UDP datagram and what the gateway must do with it."""

    category: str
    data: bytes
    call_id: str = ""  # Call-ID it was built with ("" if none), to match replies
    expect: int | None = None  # this status, with a Warning header, must come back
    silent: bool = False  # no reply at all may come back


@dataclass(frozen=True)
class Stream:
    """One TCP connection: chunks written in order, `pause` seconds apart.

    kind: `burst` (chunks as fast as possible), `bytewise` (one segment per byte),
    `slowloris` (one byte every `pause` s until the server closes or `limit` s),
    `idle` (connects and never sends), `abort` (chunks, then a reset instead of a close).
    `replies` responses with status `status` must come back before the client closes; with
    `status` alone, whatever comes back has that status; else only errors may come back.
    """

    category: str
    chunks: tuple[bytes, ...]
    kind: str = "burst"
    pause: float = 0.0
    limit: float = 15.0
    replies: int = 0
    status: int | None = None

    @property
    def size(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)


@dataclass
class Corpus:
    datagrams: list[Datagram] = field(default_factory=list)
    streams: list[Stream] = field(default_factory=list)

    def udp(self, category: str, data: bytes, call_id: str = "", expect: int | None = None,
            silent: bool = False) -> None:
        """A datagram, or a stream when it is above the UDP payload limit."""
        if len(data) > UDP_MAX_PAYLOAD:
            self.streams.append(Stream(category, (tcp_via(data),)))
        else:
            self.datagrams.append(Datagram(category, data, call_id, expect, silent))

    def counts(self) -> dict[str, tuple[int, int]]:
        """category -> (datagrams, streams)."""
        udp = Counter(d.category for d in self.datagrams)
        tcp = Counter(s.category for s in self.streams)
        return {name: (udp[name], tcp[name]) for name in sorted(set(udp) | set(tcp))}


# Valid messages --------------------------------------------------------------------------

def register_lines(n: int, port: int, transport: str = "UDP", user: str | None = None,
                   **replace: str | None) -> list[str]:
    """Start line and header lines of a valid REGISTER (`hostile<n>@example.com`).

    `replace` sets a header by its name with `-` as `_` (None removes it).
    """
    user = user or f"hostile{n}"
    headers = {
        "Via": f"SIP/2.0/{transport} {HOST}:{port};branch=z9hG4bK-hostile-{n};rport",
        "Max-Forwards": "70",
        "From": f"<sip:{user}@example.com>;tag=h{n}",
        "To": f"<sip:{user}@example.com>",
        "Call-ID": call_id(n),
        "CSeq": "1 REGISTER",
        "Contact": f"<sip:{user}@{HOST}:5999>;expires=3600",
        "Expires": "3600",
        "User-Agent": "hostile-corpus",
        "Content-Length": "0",
    }
    return ["REGISTER sip:example.com SIP/2.0"] + _apply(headers, replace)


def register(n: int, port: int, transport: str = "UDP", user: str | None = None,
             **replace: str | None) -> bytes:
    return wire(register_lines(n, port, transport, user, **replace))


def reginfo_body(n: int, user: str | None = None, contacts: int = 1) -> bytes:
    """A full-state version-0 reginfo document, without trailing whitespace."""
    user = user or f"hostile{n}"
    items = "".join(
        f'<contact id="c{n}-{i}" state="active" event="registered" expires="3600" '
        f'callid="{user}-dev{i}@corpus" cseq="1">\n<uri>sip:{user}@{HOST}:{6000 + i}</uri>\n'
        "</contact>\n" for i in range(contacts))
    return (f'<?xml version="1.0"?>\n<reginfo xmlns="{REGINFO_NS}" version="0" state="full">\n'
            f'<registration aor="sip:{user}@example.com" id="r{n}" state="active">\n'
            f"{items}</registration>\n</reginfo>").encode()


def notify_lines(n: int, port: int, transport: str = "UDP", **replace: str | None) -> list[str]:
    headers = {
        "Via": f"SIP/2.0/{transport} {HOST}:{port};branch=z9hG4bK-hostile-{n};rport",
        "Max-Forwards": "70",
        "From": f"<sip:presence@example.com>;tag=n{n}",
        "To": f"<sip:reginfo@{HOST}>;tag=s{n}",
        "Call-ID": call_id(n),
        "CSeq": "1 NOTIFY",
        "Contact": f"<sip:notifier@{HOST}:5999>",
        "Event": "reg",
        "Subscription-State": "active;expires=3600",
        "Content-Type": "application/reginfo+xml",
        "Content-Length": "{length}",
    }
    return [f"NOTIFY sip:reginfo@{HOST} SIP/2.0"] + _apply(headers, replace)


def notify(n: int, port: int, body: bytes | None = None, transport: str = "UDP",
           **replace: str | None) -> bytes:
    """A NOTIFY; Content-Length is the body's unless `replace` gives one."""
    body = reginfo_body(n) if body is None else body
    lines = [line.replace("{length}", str(len(body)))
             for line in notify_lines(n, port, transport, **replace)]
    return wire(lines, body)


def call_id(n: int) -> str:
    return f"hostile-{n}@corpus"


def wire(lines: list[str], body: bytes = b"") -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def tcp_via(data: bytes) -> bytes:
    return data.replace(b"SIP/2.0/UDP ", b"SIP/2.0/TCP ", 1)


def _apply(headers: dict[str, str], replace: dict[str, str | None]) -> list[str]:
    for key, value in replace.items():
        name = key.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return [f"{name}: {value}" for name, value in headers.items()]


# The corpus --------------------------------------------------------------------------------

class _Numbers:
    """Message numbers: one per message, so every Call-ID and branch is unique."""

    def __init__(self) -> None:
        self.next = 1

    def __call__(self) -> int:
        self.next += 1
        return self.next - 1


def build_corpus(reply_port: int, seed: int = SEED) -> Corpus:
    """The whole corpus, the same for the same seed and port."""
    rng = random.Random(seed)
    number = _Numbers()
    corpus = Corpus()
    for part in (_truncations, _byte_flips, _deletions_and_duplicates, _content_lengths,
                 _folding, _huge_values, _many_headers, _nul_bytes, _invalid_utf8, _binary,
                 _empty_and_floods, _responses, _methods_and_versions, _bad_values,
                 _hostile_xml, _streams):
        part(corpus, rng, number, reply_port)
    return corpus


def _truncations(corpus: Corpus, rng: random.Random, number: _Numbers, port: int) -> None:
    """Cut at every kind of boundary: line start, name end, colon, value, between CR and LF."""
    for kind in ("register", "notify"):
        n = number()
        data = register(n, port) if kind == "register" else notify(n, port)
        head_end = data.index(b"\r\n\r\n")
        cseq_end = data.index(b"\r\n", data.index(b"\r\nCSeq:") + 2) + 2
        cuts: set[int] = {1, 2}
        pos = 0
        while pos < head_end:
            end = data.index(b"\r\n", pos)
            colon = data.find(b":", pos, end)
            cuts |= {pos, end, end + 1, (pos + end) // 2}
            if colon > 0:
                cuts |= {colon, colon + 1, colon + 2}
            pos = end + 2
        cuts |= {head_end + 1, head_end + 2, head_end + 3}  # inside the empty line
        if kind == "notify":  # every element and attribute boundary of the body
            body_start = head_end + 4
            for index, byte in enumerate(data[body_start:], body_start):
                if byte in b'<>="':
                    cuts |= {index, index + 1}
            cuts.add(len(data) - 1)
        for cut in sorted(c for c in cuts if 0 < c < len(data)):
            n = number()
            whole = register(n, port) if kind == "register" else notify(n, port)
            # Only a cut after the header section's end, or after the dialog headers,
            # leaves an addressable request: 400 (body shorter than Content-Length, or
            # no empty line).
            expect = 400 if cut >= head_end + 4 or (kind == "register" and cut >= cseq_end) else None
            corpus.udp(f"truncated-{kind}", whole[:cut], call_id(n), expect)


def _flip(rng: random.Random, data: bytes, flips: int, start: int = 0) -> bytes:
    mutable = bytearray(data)
    for _ in range(flips):
        mutable[rng.randrange(start, len(mutable))] = rng.choice(FORBIDDEN_BYTES)
    return bytes(mutable)


def _byte_flips(corpus: Corpus, rng: random.Random, number: _Numbers, port: int) -> None:
    for kind in ("register", "notify"):
        for index in range(200):
            n = number()
            data = register(n, port) if kind == "register" else notify(n, port)
            if kind == "notify" and index % 2:  # only in the body: headers intact, body refused
                start = data.index(b"\r\n\r\n") + 4
                corpus.udp("byte-flip-notify-body", _flip(rng, data, rng.randint(1, 4), start),
                           call_id(n), expect=400)
            else:
                corpus.udp(f"byte-flip-{kind}", _flip(rng, data, rng.choice((1, 1, 2, 3, 8))),
                           call_id(n))


def _deletions_and_duplicates(corpus: Corpus, rng: random.Random, number: _Numbers,
                              port: int) -> None:
    mandatory = ("Via", "From", "To", "Call-ID", "CSeq")
    for kind in ("register", "notify"):
        for mask in range(1, 2 ** len(mandatory)):  # every non-empty set of them removed
            n = number()
            gone = {name.replace("-", "_"): None for i, name in enumerate(mandatory) if mask >> i & 1}
            data = register(n, port, **gone) if kind == "register" else notify(n, port, **gone)
            corpus.udp(f"deleted-headers-{kind}", data, call_id(n))
    n = number()
    corpus.udp("deleted-headers-notify", notify(n, port, Event=None), call_id(n), expect=489)
    n = number()
    corpus.udp("deleted-headers-notify", notify(n, port, Content_Type=None), call_id(n), expect=415)
    # Single-valued headers twice (RFC 3261 7.3.1, 20): same or different values.
    for kind in ("register", "notify"):
        for name in ("From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Type",
                     "Content-Length"):
            for same in (True, False):
                n = number()
                lines = register_lines(n, port) if kind == "register" else notify_lines(n, port)
                if name == "Content-Type" and kind == "register":
                    lines.insert(-1, "Content-Type: application/sdp")
                found = next(i for i, line in enumerate(lines) if line.startswith(name + ":"))
                value = lines[found].split(": ", 1)[1]
                other = {"From": f"<sip:other{n}@example.com>;tag=o{n}",
                         "To": f"<sip:other{n}@example.com>", "Call-ID": f"other-{n}@corpus",
                         "CSeq": "2 " + value.split()[-1], "Max-Forwards": "69",
                         "Content-Type": "text/plain", "Content-Length": "7"}[name]
                lines.insert(found + 1, f"{name}: {value if same else other}")
                body = b"" if kind == "register" else reginfo_body(n)
                data = wire([line.replace("{length}", str(len(body))) for line in lines], body)
                # Content-Length twice with the same value is legal; duplicates of the
                # dialog headers leave the first one to answer with.
                legal = name == "Content-Length" and same
                if not legal:
                    corpus.udp(f"duplicated-headers-{kind}", data, call_id(n), expect=400)


def _content_lengths(corpus: Corpus, rng: random.Random, number: _Numbers, port: int) -> None:
    body_length = len(reginfo_body(0))
    values = {
        "too-big": [("1", 400), ("100", 400), ("65536", 400), ("1048576", 400),
                    ("1048577", 513), ("99999999999999999999", 513)],
        "negative": [("-1", 400), ("-0", 400), ("-99999", 400)],
        "non-numeric": [("abc", 400), ("12abc", 400), ("0x10", 400), ("1 2", 400), ("", 400),
                        ("1.0", 400), ("+5", 400), ("1e3", 400), ("\uff11\uff12", 400),
                        ("\u0661", 400), ("NaN", 400), ("∞", 400)],
    }
    for name, pairs in values.items():
        for text, status in pairs:
            n = number()
            corpus.udp(f"content-length-{name}-register", register(n, port, Content_Length=text),
                       call_id(n), status if text else None)
            n = number()
            big = {"1": str(body_length + 1), "100": str(body_length + 100)}.get(text, text)
            corpus.udp(f"content-length-{name}-notify", notify(n, port, Content_Length=big),
                       call_id(n), status if text else None)
    for cut in (1, 2, 10, body_length // 2, body_length - 1):  # too small: the body is cut
        n = number()
        corpus.udp("content-length-too-small-notify",
                   notify(n, port, Content_Length=str(body_length - cut)), call_id(n), expect=400)


def _folding(corpus: Corpus, rng: random.Random, number: _Numbers, port: int) -> None:
    """Line folding (RFC 3261 7.3.1) gone wrong."""
    def variants(lines: list[str]) -> list[tuple[list[str], int | None]]:
        via = next(i for i, line in enumerate(lines) if line.startswith("Via:"))
        cseq = next(i for i, line in enumerate(lines) if line.startswith("CSeq:"))
        out: list[tuple[list[str], int | None]] = []
        out.append(([lines[0], " X-Folded: before the first header"] + lines[1:], 400))
        out.append(([lines[0].rsplit(" ", 1)[0], " SIP/2.0"] + lines[1:], None))  # start line
        out.append((lines[:cseq] + ["CSe", " q: 1 REGISTER"] + lines[cseq + 1:], None))
        out.append((lines[:via] + [lines[via].split(";")[0], ";" + lines[via].split(";", 1)[1]]
                    + lines[via + 1:], None))  # continuation without leading whitespace
        out.append((lines[:-1] + ["X-Folded: a", "\x0bb"] + lines[-1:], 400))  # VT, not SP/HT
        out.append((lines[:-1] + ["X-Folded: a", "\x0c b"] + lines[-1:], 400))  # FF
        out.append((lines[:-1] + ["X-Folded: a", "\u00a0b"] + lines[-1:], 400))  # NBSP
        out.append((lines[:-1] + ["X-Folded: a", " \x00b"] + lines[-1:], 400))  # NUL folded in
        out.append((lines[:-1] + [": no name"] + lines[-1:], 400))
        out.append((lines[:-1] + ["No colon at all"] + lines[-1:], 400))
        out.append((lines[:-1] + ["Bad Name: space in name"] + lines[-1:], 400))
        out.append((lines[:-1] + ["X@Y: not a token"] + lines[-1:], 400))
        return out

    for kind in ("register", "notify"):
        n = number()
        count = len(variants(register_lines(n, port)))
        for index in range(count):
            n = number()
            if kind == "register":
                lines, status = variants(register_lines(n, port))[index]
                corpus.udp("folding-register", wire(lines), call_id(n), status)
            else:
                body = reginfo_body(n)
                lines = [l.replace("{length}", str(len(body))) for l in notify_lines(n, port)]
                lines, status = variants(lines)[index]
                corpus.udp("folding-notify", wire(lines, body), call_id(n), status)
        # Bare CR and bare LF line ends mixed in.
        for separator in (b"\r", b"\n\r", b"\r\r\n"):
            n = number()
            data = register(n, port) if kind == "register" else notify(n, port)
            head, rest = data.split(b"\r\n\r\n", 1)
            lines = head.split(b"\r\n")
            mixed = b"\r\n".join(lines[:4]) + separator + b"\r\n".join(lines[4:])
            corpus.udp(f"folding-{kind}", mixed + b"\r\n\r\n" + rest, call_id(n))


def _huge_values(corpus: Corpus, rng: random.Random, number: _Numbers, port: int) -> None:
    """Header values from just over the 16 KiB header cap up to 1 MB (those over TCP)."""
    for size in (16_400, 20_000, 32_768, 50_000, 65_000, 100_000, 262_144, 1_048_576):
        for where in ("after", "before"):
            n = number()
            lines = register_lines(n, port)
            big = f"X-Huge: {'h' * size}"
            lines.insert(-1 if where == "after" else 1, big)
            # after the dialog headers: 513 Message Too Large with a Warning
            expect = 513 if where == "after" and size < UDP_MAX_PAYLOAD - 600 else None
            corpus.udp("huge-header-value", wire(lines), call_id(n), expect)
    for size in (17_000, 40_000, 64_000):  # in the dialog headers themselves
        for name in ("To", "Call-ID", "Via"):
            n = number()
            if name == "To":
                data = register(n, port, To=f"<sip:{'t' * size}@example.com>")
            elif name == "Call-ID":
                data = register(n, port, Call_ID=f"{'c' * size}@corpus")
            else:
                data = register(n, port, Via=f"SIP/2.0/UDP {HOST}:{port};branch=z9hG4bK{'v' * size};rport")
            corpus.udp("huge-header-value", data, call_id(n))
    n = number()  # a body just under the datagram limit in a NOTIFY
    body = reginfo_body(n).replace(b'state="active">', b'state="active" x="' + b"u" * 60_000 + b'">', 1)
    corpus.udp("huge-header-value", notify(n, port, body=body), call_id(n), expect=400)


def _many_headers(corpus: Corpus, rng: random.Random, number: _Numbers, port: int) -> None:
    for count, line in ((10_000, "a:1"), (10_000, "X-Hostile-Header-{i:05d}: value-{i}"),
                        (3_000, "a:1"), (1_500, "X-H{i}: {i}"), (2_000, "Via: SIP/2.0/UDP 127.0.0.1:9")):
        n = number()
        lines = register_lines(n, port, CSeq="x REGISTER")  # bad CSeq: refused whatever happens
        lines[-1:-1] = [line.format(i=i) for i in range(count)]
        data = wire(lines)
        small = len(data) - len(lines[0]) < 16_384
        corpus.udp("many-headers", data, call_id(n), 400 if small and "Via" not in line else None)
    for contacts in (200, 450):  # many Contacts, the last one bad: the whole REGISTER refused
        n = number()
        values = [f"<sip:m{i}@{HOST}:{7000 + i}>" for i in range(contacts)] + [f"<sip:bad@{HOST}>;expires=x"]
        corpus.udp("many-headers", register(n, port, Contact=", ".join(values)), call_id(n), 400)
    n = number()
    params = "".join(f";p{i}=v" for i in range(1_500))
    corpus.udp("many-headers", register(n, port, Contact=f"<sip:p@{HOST}>{params};expires=x"),
               call_id(n), 400)


def _nul_bytes(corpus: Corpus, rng: random.Random, number: _Numbers, port: int) -> None:
    for kind in ("register", "notify"):
        n = number()
        data = register(n, port) if kind == "register" else notify(n, port)
        positions = [0, 3, data.index(b" "), data.index(b"\r\n"), data.index(b"Via") + 1,
                     data.index(b"Call-ID: ") + 9, data.index(b"\r\n\r\n"), len(data) - 1]
        for position in positions:
            n = number()
            data = register(n, port) if kind == "register" else notify(n, port)
            corpus.udp(f"nul-{kind}", data[:position] + b"\x00" + data[position + 1:], call_id(n))
        n = number()
        data = register(n, port) if kind == "register" else notify(n, port)
        corpus.udp(f"nul-{kind}", b"\x00" * 100 + data, call_id(n))
        n = number()
        data = register(n, port) if kind == "register" else notify(n, port)
        corpus.udp(f"nul-{kind}", data.replace(b"\r\n", b"\x00\r\n"), call_id(n))
    n = number()  # NUL in the body only: headers fine, body refused
    corpus.udp("nul-notify", notify(n, port, body=reginfo_body(n).replace(b"<uri>", b"<uri>\x00")),
               call_id(n), expect=400)
    for size in (1, 2, 1000, 65_000):
        corpus.udp("nul-only", b"\x00" * size)


def _invalid_utf8(corpus: Corpus, rng: random.Random, number: _Numbers, port: int) -> None:
    sequences = [b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80",
                 b"\xff", b"\xfe\xff", b"\xc3", b"\xe2\x82", b"\xf4\x90\x80\x80", b"\x80"]
    for seq in sequences:
        for header in ("User-Agent", "To", "Call-ID", "start-line"):
            n = number()
            if header == "start-line":
                data = register(n, port).replace(b"sip:example.com", b"sip:ex" + seq + b"ample.com", 1)
            else:
                lines = register_lines(n, port)
                index = next(i for i, line in enumerate(lines) if line.startswith(header + ":"))
                text = lines[index].encode()
                data = wire(lines).replace(text, text[:-3] + seq + text[-3:], 1)
            # Only the User-Agent line leaves every dialog header readable.
            corpus.udp("invalid-utf8-register", data, call_id(n), 400 if header == "User-Agent" else None)
        n = number()
        body = reginfo_body(n).replace(b"<uri>sip:", b"<uri>sip:" + seq)
        corpus.udp("invalid-utf8-notify-body", notify(n, port, body=body), call_id(n), expect=400)
    n = number()  # valid UTF-8 but a UTF-16 body, and a Latin-1 declared body
    body = reginfo_body(n).decode().encode("utf-16")
    corpus.udp("invalid-utf8-notify-body", notify(n, port, body=body), call_id(n), expect=400)
    n = number()
    body = reginfo_body(n).replace(b'version="1.0"?>', b'version="1.0" encoding="ISO-8859-1"?>', 1)
    corpus.udp("invalid-utf8-notify-body", notify(n, port, body=body), call_id(n), expect=400)


def _binary(corpus: Corpus, rng: random.Random, number: _Numbers, port: int) -> None:
    for index in range(200):
        size = rng.choice((1, 2, 3, 4, 7, 16, 64, 200, 512, 1400, 4096, 9000, 30_000, 65_507))
        if index % 5 == 0:
            size = rng.randint(1, 65_507)
        data = rng.randbytes(size)
        if index % 10 == 1:  # garbage behind a plausible start line
            data = b"REGISTER sip:example.com SIP/2.0\r\n" + data[:60_000]
        elif index % 10 == 2:
            data = b"SIP/2.0 200 OK\r\n" + data[:60_000]
        corpus.udp("random-binary", data)
    for size in (100_000, 500_000):  # too big for UDP: over TCP
        corpus.udp("random-binary", rng.randbytes(size))


def _empty_and_floods(corpus: Corpus, rng: random.Random, number: _Numbers, port: int) -> None:
    for data in (b"", b"", b"\r\n", b"\r\n\r\n", b"\n", b"\r", b" ", b"\t", b"\r\n \r\n"):
        corpus.udp("empty", data)
    for unit, count in ((b"\r\n", 10), (b"\r\n", 1000), (b"\r\n", 32_000), (b"\n", 65_000),
                        (b"\r", 65_000), (b"\r\n\r\n", 16_000), (b" \r\n", 20_000),
                        (b"\r\n", 200_000)):
        corpus.udp("crlf-flood", unit * count)
    for count in (2, 100, 10_000):  # a flood before a request whose CSeq is bad
        n = number()
        corpus.udp("crlf-flood", b"\r\n" * count + register(n, port, CSeq="x REGISTER"), call_id(n))
    n = number()
    corpus.udp("crlf-flood", register(n, port, CSeq="x REGISTER") + b"\r\n" * 20_000, call_id(n), expect=400)


def _responses(corpus: Corpus, rng: random.Random, number: _Numbers, port: int) -> None:
    for status_line in ("SIP/2.0 200 OK", "SIP/2.0 100 Trying", "SIP/2.0 401 Unauthorized",
                        "SIP/2.0 503 Service Unavailable", "SIP/2.0 699 Whatever", "SIP/2.0 999 Bogus",
                        "SIP/2.0 2000 OK", "SIP/2.0 200", "SIP/3.0 200 OK", "SIP/2.0 099 Low"):
        for cseq in ("1 REGISTER", "1 NOTIFY", "1 PUBLISH"):
            n = number()
            lines = register_lines(n, port, CSeq=cseq)
            lines[0] = status_line
            body = reginfo_body(n) if cseq == "1 NOTIFY" else b""
            if body:
                lines[-1] = f"Content-Length: {len(body)}"
            corpus.udp("response-not-request", wire(lines, body), call_id(n), silent=True)


def _methods_and_versions(corpus: Corpus, rng: random.Random, number: _Numbers, port: int) -> None:
    for method in ("FOO", "PUBLISH", "SUBSCRIBE", "MESSAGE", "BYE", "CANCEL", "INFO", "UPDATE",
                   "PRACK", "REFER", "register", "Register", "REG1STER", "M" * 1000,
                   "GET", "X-" + "Y" * 50):
        n = number()
        lines = register_lines(n, port, CSeq=f"1 {method}")
        lines[0] = f"{method} sip:example.com SIP/2.0"
        if method == "SUBSCRIBE":  # served (the notifier): a REGISTER's headers lack Event
            corpus.udp("subscribe-without-event", wire(lines), call_id(n), expect=489)
        else:
            corpus.udp("unknown-method", wire(lines), call_id(n), expect=405)
    for variant in ("plain", "sdp", "bad-cseq"):
        n = number()
        lines = register_lines(n, port, CSeq="1 INVITE" if variant != "bad-cseq" else "1 REGISTER",
                               Contact=f"<sip:caller@{HOST}:5999>")
        lines[0] = f"INVITE sip:hostile{n}@example.com SIP/2.0"
        body = b""
        if variant == "sdp":
            body = (f"v=0\r\no=- 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
                    "m=audio 9 RTP/AVP 0\r\n").encode()
            lines[-1] = f"Content-Length: {len(body)}"
            lines.insert(-1, "Content-Type: application/sdp")
        corpus.udp("invite-ack", wire(lines, body), call_id(n), expect=405 if variant != "bad-cseq" else 400)
    for variant in ("plain", "unmatched", "with-body"):
        n = number()
        lines = register_lines(n, port, CSeq="1 ACK")
        lines[0] = f"ACK sip:hostile{n}@example.com SIP/2.0"
        body = b"garbage" if variant == "with-body" else b""
        if body:
            lines[-1] = f"Content-Length: {len(body)}"
        corpus.udp("invite-ack", wire(lines, body), call_id(n), silent=True)
    for version, status in (("SIP/3.0", 505), ("SIP/2.1", 505), ("SIP/1.0", 505), ("SIP/20.0", 505),
                            ("SIP/2.0.1", None), ("SIP/2", None), ("SIP/", None), ("HTTP/1.1", None),
                            ("SIP/2.0 extra", None)):
        for kind in ("register", "notify"):
            n = number()
            data = register(n, port) if kind == "register" else notify(n, port)
            data = data.replace(b" SIP/2.0\r\n", f" {version}\r\n".encode(), 1)
            corpus.udp("sip-version", data, call_id(n), status)
    for start_line in ("REGISTER", "REGISTER sip:example.com", "REGISTER  SIP/2.0",
                       "REGISTER sip:example.com SIP/2.0 SIP/2.0", " REGISTER sip:example.com SIP/2.0",
                       "REGISTER\tsip:example.com\tSIP/2.0", "REGISTER sip:" + "e" * 16_500 + " SIP/2.0",
                       "GET / HTTP/1.1", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"):
        n = number()
        lines = register_lines(n, port)
        lines[0] = start_line
        corpus.udp("bad-start-line", wire(lines), call_id(n))


def _bad_values(corpus: Corpus, rng: random.Random, number: _Numbers, port: int) -> None:
    """Well-formed messages with one bad value each; all addressable."""
    register_cases = [
        ({"CSeq": "abc REGISTER"}, 400), ({"CSeq": "1"}, 400), ({"CSeq": "-1 REGISTER"}, 400),
        ({"CSeq": "99999999999 REGISTER"}, 400), ({"CSeq": "1 INVITE"}, 400),
        ({"CSeq": "1.5 REGISTER"}, 400), ({"CSeq": "\u00b2 REGISTER"}, 400), ({"CSeq": ""}, 400),
        ({"CSeq": "1 REGISTER extra"}, 400), ({"CSeq": "2147483648 REGISTER"}, 400),
        ({"Max-Forwards": "256"}, 400), ({"Max-Forwards": "-1"}, 400), ({"Max-Forwards": "abc"}, 400),
        ({"Expires": "abc"}, 400), ({"Expires": "-1"}, 400), ({"Expires": "4294967296"}, 400),
        ({"Contact": f"<sip:x@{HOST}>;expires=abc"}, 400),
        ({"Contact": f"<sip:x@{HOST}>;q=2"}, 400), ({"Contact": f"<sip:x@{HOST}>;reg-id=0"}, 400),
        ({"Contact": f"<sip:x@{HOST}>;reg-id=2147483648"}, 400),
        ({"Contact": f"<sip:x@{HOST}>;+sip.instance"}, 400),
        ({"Contact": f"<sip:x@{HOST}>;expires=1;expires=2"}, 400),
        ({"Contact": "*"}, 400), ({"Contact": f"*, <sip:x@{HOST}>", "Expires": "0"}, 400),
        ({"Contact": "<http://127.0.0.1/>"}, 400), ({"Contact": f"<sip:x@{HOST}"}, 400),
        ({"Contact": f"<sip:x@{HOST}>;expires=1"}, 423),
        ({"To": "<sip:hostile@evil.example>"}, 403), ({"To": "<http://127.0.0.1/>"}, 400),
        ({"To": "<sip:x@example.com:\u00b2>"}, 400), ({"To": "<sip:x@example.com:\uff11>"}, 400),
        ({"To": "<sip:@>"}, 400), ({"To": "\"unterminated <sip:x@example.com>"}, 400),
    ]
    for replace, status in register_cases:
        n = number()
        replace = {key.replace("-", "_"): value for key, value in replace.items()}
        corpus.udp("bad-value-register", register(n, port, **replace), call_id(n), status)
    for to in ("<sip:x@example.com:\u00b2>", "<sip:x@example.com", "<sip:@>"):
        n = number()
        data = register(n, port, To=to).replace(b"branch=z9hG4bK-", b"branch=rfc2543-")
        corpus.udp("bad-value-register", data, call_id(n), 400)
    notify_cases = [
        ({"Event": "presence"}, 489), ({"Event": "reg;id"}, 400), ({"Event": ""}, 489),
        ({"Content-Type": "text/plain"}, 415), ({"Content-Type": "application/xml"}, 415),
        ({"Content-Type": "garbage"}, None), ({"Subscription-State": "bogus;;;"}, None),
        ({"CSeq": "1 REGISTER"}, 400), ({"Max-Forwards": "x"}, 400),
    ]
    for replace, status in notify_cases:
        n = number()
        replace = {key.replace("-", "_"): value for key, value in replace.items()}
        corpus.udp("bad-value-notify", notify(n, port, **replace), call_id(n), status)


def _doc(n: int, inner: str = "", root_attributes: str = 'version="0" state="full"',
         prolog: str = '<?xml version="1.0"?>\n') -> bytes:
    return (f'{prolog}<reginfo xmlns="{REGINFO_NS}" {root_attributes}>'
            f'<registration aor="sip:hostile{n}@example.com" id="r{n}" state="active">'
            f'<contact id="c{n}" state="active" event="registered" expires="3600" callid="x" cseq="1">'
            f"<uri>{inner or f'sip:hostile{n}@{HOST}:5999'}</uri></contact></registration>"
            "</reginfo>").encode()


def _hostile_xml(corpus: Corpus, rng: random.Random, number: _Numbers, port: int) -> None:
    """Valid NOTIFYs (for their headers) with bodies that must be refused (400)."""
    def laughs(levels: int, width: int) -> str:
        entities = '<!ENTITY l0 "lol">' + "".join(
            f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * width}">' for i in range(1, levels))
        return f"<!DOCTYPE reginfo [{entities}]>"

    bodies: dict[str, callable] = {
        "xxe-file": lambda n: _doc(n, "&x;", prolog='<?xml version="1.0"?>\n<!DOCTYPE reginfo '
                                   '[<!ENTITY x SYSTEM "file:///etc/passwd">]>'),
        "xxe-network": lambda n: _doc(n, "&x;", prolog='<?xml version="1.0"?><!DOCTYPE reginfo '
                                      f'[<!ENTITY x SYSTEM "http://{HOST}:9/x">]>'),
        "xxe-parameter": lambda n: _doc(n, prolog='<?xml version="1.0"?><!DOCTYPE reginfo [<!ENTITY '
                                        f'% p SYSTEM "http://{HOST}:9/p.dtd"> %p;]>'),
        "external-dtd": lambda n: _doc(n, prolog='<?xml version="1.0"?><!DOCTYPE reginfo SYSTEM '
                                       '"file:///etc/passwd">'),
        "billion-laughs": lambda n: _doc(n, "&l9;", prolog=laughs(10, 10)),
        "quadratic-blowup": lambda n: _doc(n, "&a;" * 2000, prolog='<!DOCTYPE r [<!ENTITY a "'
                                           + "a" * 20_000 + '">]>'),
        "entity-no-doctype": lambda n: _doc(n, "&undefined;"),
        "char-ref-nul": lambda n: _doc(n, "sip:a&#0;@127.0.0.1"),
        "char-ref-control": lambda n: _doc(n, "sip:a&#x1F;@127.0.0.1"),
        "cdata-doctype": lambda n: _doc(n, "<![CDATA[<!DOCTYPE x>]]>"),
        "deep-33": lambda n: _doc(n, "<a>" * 33 + "</a>" * 33),
        "deep-300": lambda n: _doc(n, "<a>" * 300 + "</a>" * 300),
        "deep-10000": lambda n: _doc(n, "<a>" * 10_000 + "</a>" * 10_000),
        "deep-unclosed": lambda n: _doc(n, "<a>" * 15_000),
        "xinclude": lambda n: _doc(n, '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
                                   'href="file:///etc/passwd" parse="text"/>'),
        "huge-attribute": lambda n: _doc(
            n, root_attributes='version="0" state="full" x="' + "a" * 50_000 + '"'),
        "many-attributes": lambda n: _doc(n, root_attributes='version="0" state="full" '
                                          + " ".join(f'a{i}="{i}"' for i in range(4000))),
        "duplicate-attribute": lambda n: _doc(n, root_attributes='version="0" version="1" state="full"'),
        "comments-then-bad": lambda n: _doc(n, "<!--" + "c" * 100 + "-->" * 1 + "<bad/>" * 1)
        .replace(b"<reginfo", b"<!--x-->" * 3000 + b"<reginfo", 1),
        "pi-flood-then-bad": lambda n: (b"<?pi x?>" * 5000) + _doc(n, "<bad/>", prolog=""),
        "utf16-declared": lambda n: _doc(n, prolog='<?xml version="1.0" encoding="UTF-16"?>'),
        "two-roots": lambda n: _doc(n) + _doc(n, prolog=""),
        "not-reginfo": lambda n: b'<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf"/>',
        "version-negative": lambda n: _doc(n, root_attributes='version="-1" state="full"'),
        "version-huge": lambda n: _doc(n, root_attributes='version="99999999999999999999999" state="full"'),
        "version-superscript": lambda n: _doc(n, root_attributes='version="\u00b2" state="full"'),
        "state-bogus": lambda n: _doc(n, root_attributes='version="0" state="bogus"'),
        "namespace-confusion": lambda n: _doc(n).replace(REGINFO_NS.encode(), b"urn:evil", 1),
        "truncated-xml": lambda n: _doc(n)[:-20],
        "text-only": lambda n: b"just some text",
        "html": lambda n: b"<html><body><script>alert(1)</script></body></html>",
        "json": lambda n: b'{"reginfo": {"version": 0}}',
    }
    many_contacts = "".join(
        f'<contact id="m{i}" state="active" event="registered" expires="3600" callid="x" cseq="1">'
        f"<uri>sip:m{i}@{HOST}:{7000 + i % 1000}</uri></contact>" for i in range(300))
    bodies["many-contacts-last-bad"] = lambda n: _doc(n).replace(
        b"</registration>", many_contacts.encode() + b'<contact id="bad" state="bogus"/></registration>')
    for name, make in bodies.items():
        n = number()
        body = make(n)
        corpus.udp("hostile-xml", notify(n, port, body=body), call_id(n), expect=400)
    # Over TCP: bodies of up to the 1 MiB body cap, and one byte over it.
    for name, body, status in (
            ("deep-1MiB", ("<a>" * 349_000).encode(), 400),
            ("laughs-1MiB", (laughs(10, 10) + " " * (1_048_576 - len(laughs(10, 10)))).encode(), 400),
            ("over-cap", b"x" * 1_048_577, None)):
        n = number()
        corpus.streams.append(Stream("hostile-xml", (notify(n, port, body=body, transport="TCP"),),
                                     replies=1 if status else 0, status=status))


def _streams(corpus: Corpus, rng: random.Random, number: _Numbers, port: int) -> None:
    """TCP-only hostility: framing, pacing, pipelining, resets."""
    def tcp_register(**replace: str | None) -> bytes:
        return register(number(), port, "TCP", **replace)

    # A 1 MB header line, and 10,000 headers.
    corpus.streams.append(Stream("tcp-huge-header", (tcp_register(X_Huge="h" * 1_048_576),)))
    lines = register_lines(number(), port, "TCP")
    lines[-1:-1] = [f"X-Header-{i}: {i}" for i in range(10_000)]
    corpus.streams.append(Stream("tcp-many-headers", (wire(lines),)))
    # Many messages in one write: 200 refused REGISTERs, 100 OPTIONS, then garbage.
    bad = b"".join(tcp_register(Expires="abc") for _ in range(200))
    corpus.streams.append(Stream("tcp-pipelined", (bad,), replies=200, status=400))
    options = b"".join(_options(number(), port) for _ in range(100))
    corpus.streams.append(Stream("tcp-pipelined", (options,), replies=100, status=200))
    corpus.streams.append(Stream("tcp-pipelined", (options[:len(options) // 2] + rng.randbytes(5000),),
                                 status=200))  # the whole OPTIONS before the garbage are served
    # One message one byte at a time (one TCP segment each), refused or served.
    corpus.streams.append(Stream("tcp-bytewise", _bytes(tcp_register(Expires="abc")),
                                 kind="bytewise", replies=1, status=400))
    corpus.streams.append(Stream("tcp-bytewise", _bytes(_options(number(), port)), kind="bytewise",
                                 replies=1, status=200))
    # Slowloris: one header byte every 0.5 s, and a connection that never sends anything.
    slow = tcp_register(X_Slow="s" * 200)
    corpus.streams.append(Stream("tcp-slowloris", _bytes(slow), kind="slowloris", pause=0.5, limit=15.0))
    corpus.streams.append(Stream("tcp-idle", (), kind="idle", limit=15.0))
    # Framing errors: no Content-Length; one larger than what follows, then close; bad ones.
    corpus.streams.append(Stream("tcp-framing", (tcp_register(Content_Length=None),)))
    n = number()
    corpus.streams.append(Stream("tcp-framing", (notify(n, port, transport="TCP", Content_Length="5000"),)))
    corpus.streams.append(Stream("tcp-framing", (tcp_register(Content_Length="100"),)))
    for value in ("-1", "abc", "1048577", "99999999999999999999", "1 2", "\u00b2"):
        corpus.streams.append(Stream("tcp-framing", (tcp_register(Content_Length=value),)))
    corpus.streams.append(Stream("tcp-framing", (b"\r\n\r", )))  # half a ping, then close
    corpus.streams.append(Stream("tcp-framing", (b"\r\n\r\n" * 50_000,)))  # ping flood
    corpus.streams.append(Stream("tcp-framing", (b"\n" * 200_000,)))
    corpus.streams.append(Stream("tcp-framing", (b"\r" * 200_000,)))
    corpus.streams.append(Stream("tcp-framing", (tcp_register()[:-30],), kind="abort"))
    corpus.streams.append(Stream("tcp-framing", (_response(number(), port),) * 20))
    # Truncated, byte-flipped and random streams.
    for index in range(25):
        n = number()
        data = notify(n, port, transport="TCP") if index % 2 else register(n, port, "TCP")
        corpus.streams.append(Stream("tcp-truncated", (data[:rng.randrange(1, len(data) - 1)],)))
    for index in range(25):
        n = number()
        data = notify(n, port, transport="TCP") if index % 2 else register(n, port, "TCP")
        corpus.streams.append(Stream("tcp-byte-flip", (_flip(rng, data, rng.randint(1, 5)),)))
    for index in range(40):
        size = rng.choice((1, 10, 100, 1000, 16_385, 65_536, 300_000, 1_048_576))
        chunks = tuple(rng.randbytes(size) for _ in range(rng.choice((1, 1, 2, 5))))
        corpus.streams.append(Stream("tcp-random-binary", chunks,
                                     kind="abort" if index % 7 == 0 else "burst"))


def _options(n: int, port: int) -> bytes:
    return wire([f"OPTIONS sip:{HOST} SIP/2.0",
                 f"Via: SIP/2.0/TCP {HOST}:{port};branch=z9hG4bK-opt-{n};rport",
                 "Max-Forwards: 70", f"From: <sip:probe@{HOST}>;tag=o{n}", f"To: <sip:{HOST}>",
                 f"Call-ID: options-{n}@corpus", "CSeq: 1 OPTIONS", "Content-Length: 0"])


def _response(n: int, port: int) -> bytes:
    lines = register_lines(n, port, "TCP")
    lines[0] = "SIP/2.0 200 OK"
    return wire(lines)


def _bytes(data: bytes) -> tuple[bytes, ...]:
    return tuple(data[i:i + 1] for i in range(len(data)))


# Messages that hit gateway bugs (fixed in 58452e1; see test_hostile_traffic.py) -------------

def bug_triggers(port: int) -> dict[str, bytes]:
    """Each a message that made the gateway misbehave before 58452e1."""
    superscript_to = "<sip:bug@example.com:\u00b2>"  # str.isdigit() is True, int() refuses it
    legacy = register(900_001, port, user="bug", To=superscript_to)
    legacy = legacy.replace(b"branch=z9hG4bK-hostile-900001", b"branch=rfc2543-900001")

    def reginfo(n: int, user: str, cseq: str = "1", param: str = "") -> bytes:
        return (f'<?xml version="1.0"?>\n<reginfo xmlns="{REGINFO_NS}" version="0" state="full">\n'
                f'<registration aor="sip:{user}@example.com" id="r{n}" state="active">\n'
                f'<contact id="c{n}" state="active" event="registered" expires="3600" '
                f'callid="{user}@corpus" cseq="{cseq}">\n<uri>sip:{user}@{HOST}:6001</uri>\n'
                f"{param}</contact>\n</registration>\n</reginfo>").encode()

    return {
        "superscript-port-in-to": register(900_000, port, user="bug", To=superscript_to),
        "superscript-port-in-to-rfc2543-branch": legacy,
        "reginfo-reg-id-superscript": notify(900_002, port, body=reginfo(
            900_002, "bugregid", param='<unknown-param name="reg-id">\u00b2</unknown-param>\n')),
        "reginfo-cseq-2**63": notify(900_003, port, body=reginfo(
            900_003, "bugcseq", cseq=str(2 ** 63))),
        "reginfo-reg-id-2**31": notify(900_004, port, body=reginfo(
            900_004, "bugpg", param=f'<unknown-param name="reg-id">{2 ** 31}</unknown-param>\n')),
    }
