"""A notifier that answers our SUBSCRIBE on our TCP connection and NOTIFYs on it too.

`serve` reaches the outbound proxy over TCP (`;transport=tcp`). The far end here reuses
the connection we opened for everything (as a proxy with connection reuse, RFC 5923,
would): the 200 to the SUBSCRIBE and then a NOTIFY in the dialog arrive on it. The NOTIFY
must be served (its binding appears in `query`) and answered 200 on the same connection.
"""

from __future__ import annotations

import json
import socket
import threading
import time

from sip_gateway.sip import SipRequest, SipResponse, StreamFramer
from tests.e2e.conftest import HOST, free_port
from tests.e2e.test_publish_loop_prevention import notified_document

BOB = "sip:bob@example.com"
DEVICE = "sip:bob-dev@192.0.2.7:5060"


class TcpNotifier(threading.Thread):
    """Accepts one connection; answers the first SUBSCRIBE 200, then NOTIFYs on it."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.server = socket.create_server((HOST, 0))
        self.server.settimeout(20)
        self.port = self.server.getsockname()[1]
        self.subscribes: list[SipRequest] = []
        self.answers: list[SipResponse] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            connection, _ = self.server.accept()
            with connection:
                connection.settimeout(20)
                self._talk(connection)
        except BaseException as error:  # reported by the test
            self.error = error
        finally:
            self.server.close()

    def _talk(self, connection: socket.socket) -> None:
        framer = StreamFramer()
        notified = False
        while not self.answers:
            data = connection.recv(65536)
            if not data:
                return
            for message in framer.feed(data):
                if isinstance(message, SipRequest) and message.method == "SUBSCRIBE":
                    self.subscribes.append(message)
                    connection.sendall(self._ok(message))
                    if not notified:
                        connection.sendall(self._notify(message))
                        notified = True
                elif isinstance(message, SipResponse):
                    self.answers.append(message)

    @staticmethod
    def _ok(request: SipRequest) -> bytes:
        headers = request.headers
        vias = "".join(f"Via: {via}\r\n" for via in headers.get_all("Via"))
        return (f"SIP/2.0 200 OK\r\n{vias}From: {headers.get('From')}\r\n"
                f"To: {headers.get('To')};tag=notifier\r\nCall-ID: {headers.get('Call-ID')}\r\n"
                f"CSeq: {headers.get('CSeq')}\r\nContact: <sip:notifier@{HOST}>\r\n"
                f"Expires: 600\r\nContent-Length: 0\r\n\r\n").encode()

    def _notify(self, subscribe: SipRequest) -> bytes:
        headers = subscribe.headers
        body = notified_document(BOB, 0, [(DEVICE, 600)])
        return (f"NOTIFY sip:reginfo@{HOST} SIP/2.0\r\n"
                f"Via: SIP/2.0/TCP {HOST}:{self.port};branch=z9hG4bKnotifier1\r\n"
                f"Max-Forwards: 70\r\nFrom: <{BOB}>;tag=notifier\r\nTo: {headers.get('From')}\r\n"
                f"Call-ID: {headers.get('Call-ID')}\r\nCSeq: 1 NOTIFY\r\n"
                f"Contact: <sip:notifier@{HOST}>\r\nEvent: reg\r\n"
                "Subscription-State: active;expires=600\r\n"
                "Content-Type: application/reginfo+xml\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def test_a_notify_on_our_own_tcp_connection_is_served_and_answered_on_it(gateways,
                                                                         sqlite_url):
    notifier = TcpNotifier()
    notifier.start()
    port = free_port()
    config = (f'[reginfo]\npublish_reginfo = false\n'
              f'outbound_proxy = "sip:{HOST}:{notifier.port};transport=tcp"\n'
              f'server_address = "sip:reginfo@{HOST}:{port};transport=tcp"\n'
              f'[listen]\nudp = ["{HOST}:{port}"]\ntcp = ["{HOST}:{port}"]\n'
              f'[[subscribe]]\nuri = "{BOB}"\nexpires = 600\n')
    gateway = gateways.start(sqlite_url, config)
    notifier.join(20)
    assert notifier.error is None, notifier.error
    assert [r.status for r in notifier.answers] == [200], gateway.log()[-3000:]
    assert notifier.answers[0].headers.get("CSeq") == "1 NOTIFY"
    [subscribe] = notifier.subscribes
    assert subscribe.headers.get("Via").startswith(f"SIP/2.0/TCP {HOST}:{port};")
    deadline = time.monotonic() + 10
    rows: list = []
    while time.monotonic() < deadline:
        rows = json.loads(gateway.cli("query", "--json", "--aor", BOB).stdout or "[]")
        if rows:
            break
        time.sleep(0.2)
    assert [(r["contact"], r["origin"]) for r in rows] == [(DEVICE, "notify")], rows
    assert gateway.stop() == 0
