"""`serve` starts, answers, and stops cleanly on SIGTERM with nothing lost."""

from __future__ import annotations

import json
import socket

from tests.e2e.conftest import HOST, options


def register_bytes(port: int, cseq: int, expires: int = 600, branch: str = "b1") -> bytes:
    return (f"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:9;branch=z9hG4bK{branch}{cseq};rport\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a\r\nTo: <sip:alice@example.com>\r\n"
            f"Call-ID: life@test\r\nCSeq: {cseq} REGISTER\r\n"
            f"Contact: <sip:alice@{HOST}:5999>;expires={expires}\r\nContent-Length: 0\r\n\r\n").encode()


def test_serve_answers_options_and_stops_on_sigterm(gateways, sqlite_url):
    gateway = gateways.start(sqlite_url)
    reply = options(gateway.port)
    assert b"Allow: REGISTER, NOTIFY, OPTIONS" in reply
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(register_bytes(gateway.port, 1), (HOST, gateway.port))
        assert sock.recv(65535).startswith(b"SIP/2.0 200 OK")
    assert gateway.stop() == 0
    log = gateway.log()
    assert "method=REGISTER aor=sip:alice@example.com result=200" in log and "stopped" in log
    [binding] = json.loads(gateway.cli("query", "--json").stdout)
    assert binding["contact"] == f"sip:alice@{HOST}:5999"


def test_untrusted_peers_get_403(gateways, sqlite_url):
    gateway = gateways.start(sqlite_url, '[security]\ntrusted = ["10.0.0.0/8"]\n')
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(register_bytes(gateway.port, 1), (HOST, gateway.port))
        reply = sock.recv(65535)
    assert reply.startswith(b"SIP/2.0 403 Forbidden") and b"not a trusted peer" in reply
