"""A watcher reached only over the TCP connection its SUBSCRIBE came on (a phone behind
NAT): its Contact names a port nobody listens on, yet every NOTIFY arrives on its own
connection; once that connection is closed, the next NOTIFY goes to the Contact, fails,
and the subscription ends (RFC 6665 4.2.2)."""

from __future__ import annotations

import json
import socket
import time

from sip_gateway.sip import KeepAlive, StreamFramer
from tests.e2e.conftest import HOST, free_port
from tests.e2e.watching import register


def config(port: int) -> str:
    return (f'[listen]\nudp = ["{HOST}:{port}"]\ntcp = ["{HOST}:{port}"]\n'
            '[reginfo]\npublish_reginfo = false\ndefault_domain = "example.com"\n')


class TcpWatcher:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=5)
        self.framer = StreamFramer()
        self.pending: list = []

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode())

    def next(self):
        while not self.pending:
            data = self.sock.recv(65535)
            assert data, "the gateway closed the connection"
            self.pending += [e for e in self.framer.feed(data) if not isinstance(e, KeepAlive)]
        return self.pending.pop(0)

    def answer(self, notify) -> None:
        head = "\r\n".join(f"{name}: {notify.headers.get(name)}"
                           for name in ("Via", "From", "To", "Call-ID", "CSeq"))
        self.send(f"SIP/2.0 200 OK\r\n{head}\r\nContent-Length: 0\r\n\r\n")


def test_notifies_go_back_on_the_watchers_own_connection(gateways, sqlite_url):
    port = free_port()
    gateway = gateways.start(sqlite_url, config(port))
    assert register(port, "alice", "sip:alice@192.0.2.40:5060", 600, 1).startswith("SIP/2.0 200")
    watcher = TcpWatcher(port)
    local = watcher.sock.getsockname()[1]
    watcher.send(f"SUBSCRIBE sip:alice@example.com SIP/2.0\r\n"
                 f"Via: SIP/2.0/TCP {HOST}:{local};branch=z9hG4bKtcpw1\r\nMax-Forwards: 70\r\n"
                 "From: <sip:alice@example.com>;tag=t1\r\nTo: <sip:alice@example.com>\r\n"
                 "Call-ID: tcp-watcher\r\nCSeq: 1 SUBSCRIBE\r\n"
                 f"Contact: <sip:alice@{HOST}:9;transport=tcp>\r\nEvent: reg\r\n"
                 "Expires: 600\r\nContent-Length: 0\r\n\r\n")
    ok = watcher.next()
    assert ok.status == 200
    first = watcher.next()
    assert first.method == "NOTIFY" and b'state="full"' in first.body
    watcher.answer(first)
    assert register(port, "alice", "sip:alice@192.0.2.41:5060", 600, 1, "laptop") \
        .startswith("SIP/2.0 200")
    second = watcher.next()
    assert b'state="partial"' in second.body and b"192.0.2.41" in second.body
    watcher.answer(second)
    watcher.sock.close()
    time.sleep(0.3)
    assert register(port, "alice", "sip:alice@192.0.2.41:5060", 0, 2, "laptop") \
        .startswith("SIP/2.0 200")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = json.loads(gateway.cli("status", "--json").stdout)
        if not status["watchers"]:
            break
        time.sleep(0.3)
    assert not status["watchers"], gateway.log()
    assert "NOTIFY failed" in gateway.log()
