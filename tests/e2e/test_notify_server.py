"""The NOTIFY server in rfc mode: dialog, Event, Content-Type and body checks over UDP."""

from __future__ import annotations

import json
import socket

from tests.e2e.conftest import HOST

BODY = ('<?xml version="1.0"?><reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="{v}" '
        'state="full"><registration aor="sip:nina@example.com" id="r" state="active">'
        '<contact id="n1" state="active" event="registered" expires="600" callid="n@x" cseq="1">'
        '<uri>sip:nina@192.0.2.7</uri></contact></registration></reginfo>')


def notify(port: int, *, version: int = 0, event: str = "reg", content_type: str = "application/reginfo+xml",
           state: str = "active;expires=600", body: str | None = None, branch: str = "1") -> bytes:
    payload = (BODY.format(v=version) if body is None else body).encode()
    return (f"NOTIFY sip:reginfo@{HOST} SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:{port};branch=z9hG4bK-n{branch};rport\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:notifier@example.com>;tag=remote1\r\n"
            "To: <sip:reginfo@example.com>;tag=local1\r\nCall-ID: dialog-1@test\r\n"
            f"CSeq: {10 + version} NOTIFY\r\nEvent: {event}\r\nSubscription-State: {state}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n\r\n").encode() + payload


def exchange(sock: socket.socket, gateway_port: int, data: bytes) -> bytes:
    sock.sendto(data, (HOST, gateway_port))
    return sock.recv(65535)


def test_rfc_mode_checks_the_dialog_event_type_and_body(gateways, sqlite_url, tmp_path):
    gateway = gateways.start(sqlite_url)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(10)
        port = sock.getsockname()[1]
        unknown = exchange(sock, gateway.port, notify(port, branch="a"))
        assert unknown.startswith(b"SIP/2.0 481")

        # The subscription becomes known (as the SUBSCRIBE side will record it).
        body_file = tmp_path / "first.xml"
        body_file.write_text(BODY.format(v=0))
        first = gateway.cli("handle-notify", str(body_file), "--subscription",
                            "dialog-1@test;local=local1;remote=remote1")
        assert first.stdout.strip() == "1", first.stderr

        assert exchange(sock, gateway.port, notify(port, version=1, branch="b")).startswith(b"SIP/2.0 200")
        wrong_event = exchange(sock, gateway.port, notify(port, version=2, event="presence", branch="c"))
        assert wrong_event.startswith(b"SIP/2.0 489") and b"Allow-Events: reg" in wrong_event
        wrong_type = exchange(sock, gateway.port, notify(port, version=2, content_type="text/plain", branch="d"))
        assert wrong_type.startswith(b"SIP/2.0 415")
        bad_body = exchange(sock, gateway.port, notify(port, version=2, body="<reginfo>", branch="e"))
        assert bad_body.startswith(b"SIP/2.0 400") and b"Warning: 399 pua-reginfo" in bad_body
        ended = exchange(sock, gateway.port, notify(port, version=2, branch="f",
                                                    state="terminated;reason=deactivated"))
        assert ended.startswith(b"SIP/2.0 200")
        after_end = exchange(sock, gateway.port, notify(port, version=3, branch="g"))
        assert after_end.startswith(b"SIP/2.0 481")  # the subscription has ended
    [binding] = json.loads(gateway.cli("query", "--json").stdout)
    assert (binding["contact"], binding["origin"]) == ("sip:nina@192.0.2.7", "notify")
