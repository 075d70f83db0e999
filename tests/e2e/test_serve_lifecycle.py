"""`serve` starts, answers, and stops cleanly on SIGTERM with nothing lost."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime

from tests.e2e.conftest import HOST, ROOT, free_port, options


def register_bytes(port: int, cseq: int, expires: int = 600, branch: str = "b1") -> bytes:
    return (f"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:9;branch=z9hG4bK{branch}{cseq};rport\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a\r\nTo: <sip:alice@example.com>\r\n"
            f"Call-ID: life@test\r\nCSeq: {cseq} REGISTER\r\n"
            f"Contact: <sip:alice@{HOST}:5999>;expires={expires}\r\nContent-Length: 0\r\n\r\n").encode()


def test_serve_answers_options_and_stops_on_sigterm(gateways, sqlite_url):
    gateway = gateways.start(sqlite_url)
    reply = options(gateway.port)
    assert b"Allow: REGISTER, SUBSCRIBE, NOTIFY, OPTIONS" in reply
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


def test_the_sweeper_expires_bindings_on_time(gateways, sqlite_url):
    gateway = gateways.start(sqlite_url, "[registrar]\nmin_expires = 1\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(register_bytes(gateway.port, 1, expires=2), (HOST, gateway.port))
        assert sock.recv(65535).startswith(b"SIP/2.0 200 OK")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        events = json.loads(gateway.cli("audit", "alice@example.com", "--json").stdout)
        if events[-1]["event"] == "registration.terminated":
            break
        time.sleep(0.5)
    assert [e["event"] for e in events[-2:]] == ["expired", "registration.terminated"]
    assert events[-2]["origin"] == "expiry"
    lapse = datetime.fromisoformat(events[-2]["time"].replace("Z", "+00:00")).timestamp()
    assert lapse - events[-2]["expires"] < 2.5  # recorded within the sweep period


def test_tcp_keepalive_pings_are_answered_and_sigint_stops_cleanly(gateways, sqlite_url):
    gateway = gateways.start(sqlite_url)
    with socket.create_connection((HOST, gateway.port), timeout=5) as conn:
        conn.sendall(b"\r\n\r\n")
        assert conn.recv(10) == b"\r\n"
        conn.sendall(register_bytes(gateway.port, 1).replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP"))
        assert conn.recv(65535).startswith(b"SIP/2.0 200 OK")
    gateway.process.send_signal(signal.SIGINT)
    assert gateway.process.wait(timeout=20) == 0
    assert "stopped" in gateway.log()


def test_an_ipv6_listener_serves(gateways, sqlite_url):
    port = free_port()
    v6 = gateways.start(sqlite_url, f'[listen]\nudp = ["[::1]:{port}"]\ntcp = ["[::1]:{port}"]\n')
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(register_bytes(port, 1).replace(f"{HOST}:9".encode(), b"[::1]:9"), ("::1", port))
        reply = sock.recv(65535)
    assert reply.startswith(b"SIP/2.0 200 OK")
    assert v6.alive()


def test_a_malformed_request_over_tcp_is_answered_400_before_closing(gateways, sqlite_url):
    gateway = gateways.start(sqlite_url)
    bad = register_bytes(gateway.port, 1).replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP").replace(
        b"CSeq: 1 REGISTER", b"CSeq: x REGISTER")
    with socket.create_connection((HOST, gateway.port), timeout=5) as conn:
        conn.sendall(bad)
        reply = conn.recv(65535)
        assert reply.startswith(b"SIP/2.0 400") and b"Warning: 399 pua-reginfo" in reply
        assert conn.recv(10) == b""  # then the stream is closed
    assert gateway.alive()


def test_a_tcp_outbound_proxy_without_a_tcp_listener_is_a_one_line_settings_error(
        tmp_path, sqlite_url):
    port = free_port()
    config = tmp_path / "tcp-proxy.toml"
    config.write_text(f'[listen]\nudp = ["{HOST}:{port}"]\ntcp = []\n'
                      f'[reginfo]\noutbound_proxy = "sip:{HOST}:5080;transport=tcp"\n')
    result = subprocess.run([sys.executable, "-m", "infrastructure.cli", "serve", "--config",
                             str(config), "--store", sqlite_url],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "outbound_proxy" in lines[0] and "[listen] tcp" in lines[0], \
        result.stderr
    assert options(port) == b""  # nothing was left listening


def test_overload_is_refused_with_503_and_nothing_refused_is_stored(gateways, sqlite_url):
    """Bursts far beyond `[store] max_pending`: some REGISTERs get 503 with Retry-After at
    once; every one answered 200 is in `query`, none answered 503 is. (Unanswered ones
    are retransmitted, as a UA would: UDP may drop some of a burst.)"""
    gateway = gateways.start(sqlite_url, "[store]\nmax_pending = 4\n")
    answers: dict[str, bytes] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind((HOST, 0))
        sock.settimeout(1.0)
        local = sock.getsockname()[1]
        for _ in range(10):
            missing = [n for n in range(300) if f"burst{n}@test" not in answers]
            if not missing:
                break
            for index, n in enumerate(missing):
                sock.sendto((f"REGISTER sip:example.com SIP/2.0\r\n"
                             f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bKburst{n};rport\r\n"
                             f"Max-Forwards: 70\r\nFrom: <sip:u{n}@example.com>;tag=b\r\n"
                             f"To: <sip:u{n}@example.com>\r\nCall-ID: burst{n}@test\r\n"
                             f"CSeq: 1 REGISTER\r\n"
                             f"Contact: <sip:u{n}@{HOST}:5999>;expires=600\r\n"
                             "Content-Length: 0\r\n\r\n").encode(), (HOST, gateway.port))
                if index % 50 == 49:
                    time.sleep(0.01)
            try:
                while True:
                    data = sock.recv(65535)
                    call_id = next(line.split(b":", 1)[1].strip().decode()
                                   for line in data.split(b"\r\n") if line.startswith(b"Call-ID:"))
                    answers.setdefault(call_id, data)
            except TimeoutError:
                pass
    assert len(answers) == 300, f"{len(answers)} answered"
    refused = {c for c, data in answers.items() if data.startswith(b"SIP/2.0 503")}
    stored = {c for c, data in answers.items() if data.startswith(b"SIP/2.0 200")}
    assert refused and stored and len(refused | stored) == 300
    assert all(b"\r\nRetry-After: 1" in answers[c] for c in refused)
    rows = json.loads(gateway.cli("query", "--json").stdout)
    assert {f"burst{r['aor'].split(':')[1].split('@')[0][1:]}@test" for r in rows} == stored
    assert gateway.stop() == 0


def test_sigterm_with_tcp_clients_connected_closes_them_quietly(gateways, sqlite_url):
    """Open TCP connections (idle, mid-message, and one that just registered) are closed
    at shutdown without a traceback or an ERROR line in the log."""
    gateway = gateways.start(sqlite_url)
    clients = []
    try:
        for n in range(12):
            client = socket.create_connection((HOST, gateway.port), timeout=5)
            clients.append(client)
            if n % 3 == 1:
                client.sendall(b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/TCP ")  # partial
            elif n % 3 == 2:
                client.sendall(register_bytes(gateway.port, n).replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP"))
                assert client.recv(65535).startswith(b"SIP/2.0 200 OK")
        time.sleep(0.3)  # every connection is being served
        assert gateway.stop() == 0
        for client in clients:  # the server closed its end
            client.settimeout(5)
            while client.recv(65535):
                pass
    finally:
        for client in clients:
            client.close()
    log = gateway.log()
    assert "stopped" in log
    assert "Traceback" not in log and "ERROR" not in log and "Exception in callback" not in log


def test_a_register_retransmitted_after_a_crash_gets_its_200_and_a_stale_one_a_400(
        gateways, sqlite_url):
    """The REGISTER was committed, then serve died (SIGKILL): the UA's retransmission
    reaches a new process whose transaction layer never saw it. It is the same request
    (Call-ID, CSeq, Contact), so it gets the 200 with the binding, and nothing is recorded
    twice; a genuinely older CSeq gets 400, never a 5xx."""
    first = gateways.start(sqlite_url)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(register_bytes(first.port, 7), (HOST, first.port))
        assert sock.recv(65535).startswith(b"SIP/2.0 200 OK")
    first.process.kill()
    first.process.wait(timeout=10)
    second = gateways.start(sqlite_url)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(register_bytes(second.port, 7), (HOST, second.port))
        again = sock.recv(65535)
        sock.sendto(register_bytes(second.port, 6, branch="b2"), (HOST, second.port))
        stale = sock.recv(65535)
    assert again.startswith(b"SIP/2.0 200 OK")
    assert f"Contact: <sip:alice@{HOST}:5999>;expires=".encode() in again
    assert stale.startswith(b"SIP/2.0 400") and b"CSeq 6 is not above 7" in stale
    events = json.loads(second.cli("audit", "alice@example.com", "--json").stdout)
    assert [e["event"] for e in events].count("registered") == 1
    assert not [e for e in events if e["event"] == "refreshed"]
