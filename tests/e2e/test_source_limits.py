"""`[security] max_rate` on a real `serve`: one source flooding REGISTERs far above the
rate gets 503s with Retry-After (and silence beyond twice the rate), while another
source, under the rate, has every REGISTER (digest-authenticated, 401 then 200) answered
200 in time. Both sources are loopback addresses outside `[security] trusted`; the
refusals show in the metrics. Every gateway is stopped by PID."""

from __future__ import annotations

import socket
import statistics
import threading
import time
import urllib.request

from sip_gateway.auth import MD5, ha1
from tests.digest_client import authorization
from tests.e2e.conftest import free_port

DOMAIN, RATE = "example.com", 50
FLOODER, USER_SOURCE = "127.0.0.2", "127.0.0.3"


def register(sock: socket.socket, number: int, credentials: str = "") -> bytes:
    host, port = sock.getsockname()
    return (f"REGISTER sip:{DOMAIN} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK-{host}-{number};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:alice@{DOMAIN}>;tag=t{number}\r\n"
            f"To: <sip:alice@{DOMAIN}>\r\nCall-ID: limits-{host}@e2e\r\nCSeq: {number} REGISTER\r\n"
            f"Contact: <sip:alice@{host}:{port}>\r\nExpires: 600\r\n{credentials}"
            "Content-Length: 0\r\n\r\n").encode()


def flood(target: tuple[str, int], stop: threading.Event, answers: list[bytes]) -> None:
    """REGISTERs from FLOODER at about 1,000 a second, without credentials."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((FLOODER, 0))
        sock.setblocking(False)
        number = 0
        while not stop.is_set():
            for _ in range(10):
                number += 1
                sock.sendto(register(sock, number), target)
            time.sleep(0.01)
            try:
                while True:
                    answers.append(sock.recv(65535))
            except BlockingIOError:
                pass


def test_a_flooding_source_is_refused_and_another_served_in_time(gateways, sqlite_url, tmp_path):
    users = tmp_path / "users.htdigest"
    users.write_text(f"alice:{DOMAIN}:{ha1(MD5, 'alice', DOMAIN, 'secret')}\n")
    metrics = free_port()
    gateway = gateways.start(sqlite_url, (
        f'[security]\ntrusted = ["127.0.0.1/32"]\nmax_rate = {RATE}\n'
        f'[auth]\nrealm = "{DOMAIN}"\ncredentials = "{users}"\n'
        f'[metrics]\nlisten = "127.0.0.1:{metrics}"\n'))
    target = (gateway.host, gateway.port)
    stop, flooded = threading.Event(), []
    flooder = threading.Thread(target=flood, args=(target, stop, flooded))
    flooder.start()
    latencies, statuses = [], []
    try:
        time.sleep(0.5)  # the flood is under way
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((USER_SOURCE, 0))
            sock.settimeout(2)
            for number in range(1, 41, 2):  # 20 registrations, 40 requests, ~10 a second
                started = time.monotonic()
                sock.sendto(register(sock, number), target)
                challenge = sock.recv(65535).decode()
                assert challenge.startswith("SIP/2.0 401 "), challenge
                value = next(line.split(":", 1)[1].strip() for line in challenge.split("\r\n")
                             if line.startswith("WWW-Authenticate:"))
                signed = authorization(value, "alice", "secret", "REGISTER", f"sip:{DOMAIN}")
                sock.sendto(register(sock, number + 1, f"Authorization: {signed}\r\n"), target)
                answer = sock.recv(65535).decode()
                latencies.append(time.monotonic() - started)
                statuses.append(answer.split(" ", 2)[1])
                time.sleep(0.1)
    finally:
        stop.set()
        flooder.join()
    assert statuses == ["200"] * 20, statuses
    assert max(latencies) < 1.0, (statistics.median(latencies), max(latencies))
    refused = [a for a in flooded if a.startswith(b"SIP/2.0 503 ")]
    assert refused and all(b"\r\nRetry-After: 1\r\n" in a for a in refused)
    assert len(flooded) < 3 * RATE * 5  # no more than twice the rate answered, over ~4 s
    scrape = urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5).read()
    assert b'pua_reginfo_sip_unavailable_total{cause="rate_limit"}' in scrape
    assert b'pua_reginfo_sip_dropped_total{reason="rate_limit"}' in scrape
