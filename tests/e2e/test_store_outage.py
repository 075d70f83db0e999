"""The PostgreSQL event store goes away under a running `serve`, then comes back.

The test's own database stops taking connections and its sessions are ended. REGISTERs
must then get `503 Service Unavailable` with `Retry-After` within `[store] timeout`
(never hang, never a 200 for a change that was not stored), later ones at once, and once
the database takes connections again the next REGISTER gets 200 and is in `query`.
"""

from __future__ import annotations

import json
import socket
import time
import uuid

import psycopg
import pytest

from sip_gateway.sip import SipResponse, parse_message
from tests.e2e.conftest import HOST, options

pytestmark = pytest.mark.postgres
STORE_TIMEOUT = 2


def register(port: int, cseq: int, timeout: float = 15) -> tuple[SipResponse | None, float]:
    """One REGISTER of alice over UDP (no retransmission); its final response and delay."""
    branch = f"z9hG4bK{uuid.uuid4().hex}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(timeout)
        message = (f"REGISTER sip:example.com SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP {HOST}:{sock.getsockname()[1]};branch={branch};rport\r\n"
                   "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a\r\n"
                   f"To: <sip:alice@example.com>\r\nCall-ID: outage@test\r\n"
                   f"CSeq: {cseq} REGISTER\r\nContact: <sip:alice@{HOST}:5999>;expires=600\r\n"
                   "Content-Length: 0\r\n\r\n").encode()
        started = time.monotonic()
        sock.sendto(message, (HOST, port))
        try:
            response = parse_message(sock.recv(65535))
        except OSError:
            return None, time.monotonic() - started
        return response, time.monotonic() - started


def admin(sql: str) -> None:
    with psycopg.connect(f"postgresql://postgres@{HOST}:5432/postgres", autocommit=True) as db:
        db.execute(sql)


def test_registers_get_503_while_the_store_is_down_and_200_when_it_is_back(gateways,
                                                                            postgres_url):
    database = postgres_url.rsplit("/", 1)[1]
    gateway = gateways.start(postgres_url, f"[store]\ntimeout = {STORE_TIMEOUT}\n")
    first, _ = register(gateway.port, 1)
    assert first is not None and first.status == 200, first
    try:
        admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
              f"WHERE datname = '{database}'")
        refused, waited = register(gateway.port, 2)
        assert refused is not None and refused.status == 503, refused
        assert refused.headers.get("Retry-After") is not None, refused
        assert waited < STORE_TIMEOUT + 3, f"503 after {waited:.1f} s"
        again, fast = register(gateway.port, 3)
        assert again is not None and again.status == 503 and fast < 1.0, (again, fast)
    finally:
        admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    deadline, cseq, answer = time.monotonic() + 30, 10, None
    while time.monotonic() < deadline:
        answer, _ = register(gateway.port, cseq)
        if answer is not None and answer.status == 200:
            break
        cseq += 1
        time.sleep(0.5)
    assert answer is not None and answer.status == 200, (answer, gateway.log()[-3000:])
    [binding] = json.loads(gateway.cli("query", "--json").stdout)
    assert binding["cseq"] == cseq
    assert gateway.stop() == 0
    assert "event store unavailable" in gateway.log()
    assert "event store available again" in gateway.log()


def options_status(port: int) -> int | None:
    reply = options(port)
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"SIP/2.0 ") else None


def wait_for_options(port: int, status: int, timeout: float = 10) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if options_status(port) == status:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"OPTIONS never answered {status} within {timeout} s")


def test_options_says_503_while_the_store_is_away_even_without_traffic(gateways, postgres_url):
    """A dispatcher probing with OPTIONS stops sending to a node whose store is gone, and
    comes back when it is back, with no REGISTER needed to notice either."""
    database = postgres_url.rsplit("/", 1)[1]
    gateway = gateways.start(postgres_url, f"[store]\ntimeout = {STORE_TIMEOUT}\n")
    assert options_status(gateway.port) == 200
    try:
        admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
              f"WHERE datname = '{database}'")
        wait_for_options(gateway.port, 503)
        reply = options(gateway.port)
        assert b"Retry-After: 5" in reply and b"not ready" in reply, reply
    finally:
        admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    wait_for_options(gateway.port, 200)
    first, _ = register(gateway.port, 1)
    assert first is not None and first.status == 200, first
