"""SIGTERM with a deep PUBLISH outbox, then a restart: every change published exactly once.

300 REGISTERs (one new AoR each) are answered 200 as fast as the gateway takes them, and
`serve` is stopped at once, while most of their PUBLISHes are still queued. Shutdown
drains what it can (the UDP socket stays open for the answers, no error in the log); the
restarted gateway publishes the rest. The presence server (which absorbs
retransmissions like any UAS) must have received exactly one PUBLISH per AoR.
"""

from __future__ import annotations

import socket
from collections import Counter

from tests.e2e.conftest import HOST, free_port
from tests.e2e.python_peer import PythonPeer

COUNT = 300
WINDOW = 32


def register_all(port: int) -> None:
    """REGISTER u0..u299 with WINDOW in flight (retransmitting any unanswered)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind((HOST, 0))
        sock.settimeout(2.0)
        local = sock.getsockname()[1]

        def send(n: int) -> None:
            sock.sendto((f"REGISTER sip:example.com SIP/2.0\r\n"
                         f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bKdown{n};rport\r\n"
                         f"Max-Forwards: 70\r\nFrom: <sip:u{n}@example.com>;tag=d\r\n"
                         f"To: <sip:u{n}@example.com>\r\nCall-ID: down{n}@test\r\n"
                         f"CSeq: 1 REGISTER\r\nContact: <sip:u{n}@{HOST}:5999>;expires=600\r\n"
                         "Content-Length: 0\r\n\r\n").encode(), (HOST, port))

        answered: set[int] = set()
        sent = 0
        while sent < min(WINDOW, COUNT):
            send(sent)
            sent += 1
        while len(answered) < COUNT:
            try:
                data = sock.recv(65535)
            except TimeoutError:
                for n in set(range(sent)) - answered:
                    send(n)
                continue
            assert data.startswith(b"SIP/2.0 200"), data[:200]
            n = int(data.split(b"Call-ID: down", 1)[1].split(b"@", 1)[0])
            if n not in answered:
                answered.add(n)
                if sent < COUNT:
                    send(sent)
                    sent += 1


def test_a_stop_with_a_deep_outbox_loses_and_duplicates_no_publish(gateways, sqlite_url):
    peer = PythonPeer.start(free_port())
    port = free_port()
    config = (f'[reginfo]\ndefault_domain = "example.com"\npublish_reginfo = true\n'
              f'outbound_proxy = "sip:{HOST}:{peer.port}"\n'
              f'[listen]\nudp = ["{HOST}:{port}"]\ntcp = ["{HOST}:{port}"]\n')
    try:
        gateway = gateways.start(sqlite_url, config)
        register_all(port)
        assert gateway.stop() == 0
        log = gateway.log()
        assert "Traceback" not in log and "exception was never retrieved" not in log, \
            log[-4000:]
        gateway = gateways.start(sqlite_url, config)

        def published(p):
            return len({m.uri for m in p.publishes}) == COUNT
        assert peer.wait_for(published, 30), f"{len(peer.publishes)} PUBLISHes"
        assert peer.wait_for(lambda p: False, 1.0) is False  # let stragglers arrive
        counts = Counter(str(m.uri) for m in peer.publishes)
        assert len(counts) == COUNT and set(counts.values()) == {1}, \
            [(uri, n) for uri, n in counts.items() if n != 1][:10]
        assert gateway.stop() == 0
    finally:
        peer.stop()
