"""The 43 lab NOTIFYs over UDP to `serve` give the results of `handle-notify` in that mode.

Each NOTIFY is sent as recorded except its Via, which points at this test's socket. The
same bytes go through `handle-notify` on a second store. After every case: the reply
must be what the result code means (1 or 2: the configured 2xx; -1: the refusal's status),
and both stores must hold the same bindings.
"""

from __future__ import annotations

import json
import re
import socket
import time

import pytest
from click.testing import CliRunner

from domain import ContactUpdate, RegisterRequest
from infrastructure.cli import cli
from infrastructure.commands import Register
from tests.e2e.conftest import HOST, wait_for_workers
from tests.integration.notify_cases import cases
from tests.support import open_test_service

CASES = cases()
CAROL_REGISTER = ("REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP {host}:{port};branch=z9hG4bK-carol;rport\r\n"
                  "Max-Forwards: 70\r\nFrom: <sip:carol@example.com>;tag=c\r\nTo: <sip:carol@example.com>\r\n"
                  "Call-ID: lab-carol-dev1@127.0.0.1\r\nCSeq: 1 REGISTER\r\n"
                  "Contact: <sip:carol@127.0.0.1:5091;transport=udp>;expires=3600\r\n"
                  "User-Agent: sipp-lab-ua carol\r\nContent-Length: 0\r\n\r\n")


def readdressed(data: bytes, port: int) -> bytes:
    return re.sub(rb"Via: SIP/2.0/UDP [^;\r\n]+;branch=([^;\r\n]+)[^\r\n]*",
                  lambda m: b"Via: SIP/2.0/UDP %s:%d;branch=%s;rport" % (HOST.encode(), port, m.group(1)),
                  data, count=1)


def table(store: str) -> set:
    out = CliRunner().invoke(cli, ["query", "--json", "--store", store])
    return {(b["aor"], b["contact"], b["callid"], b["cseq"], b["q"]) for b in json.loads(out.stdout)}


def expected_status(stdout: str, stderr: str, reply_code: int) -> int:
    code = int(stdout.strip())
    if code in (1, 2):
        return reply_code
    found = re.search(r"-1: (\d{3}): ", stderr)
    return int(found.group(1)) if found else 400


@pytest.mark.parametrize("mode, reply_code, workers",
                         [("kamailio", 202, 0), ("rfc", 200, 0), ("kamailio", 202, 2)])
def test_fixture_notifies_over_udp_match_handle_notify(gateways, tmp_path, mode, reply_code,
                                                       workers):
    """With UDP workers too: the workers answer, serve commits."""
    served = f"sqlite:///{tmp_path / f'served-{mode}.db'}"
    offline = f"sqlite:///{tmp_path / f'offline-{mode}.db'}"
    gateway = gateways.start(served, f'[notify]\nmode = "{mode}"\nreply_code = {reply_code}\n'
                                      "accept_unsolicited_notify = true\n"
                                      f"[listen]\nudp_workers = {workers}\n")
    if workers:
        wait_for_workers(gateway, workers)
    runner = CliRunner()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(10)
        port = sock.getsockname()[1]
        for case in CASES:
            if case.pre == "register:carol":
                sock.sendto(CAROL_REGISTER.format(host=HOST, port=port).encode(), (HOST, gateway.port))
                assert sock.recv(65535).startswith(b"SIP/2.0 200")
                _register_carol_offline(offline)
            data = readdressed(case.path.read_bytes(), port)
            sock.sendto(data, (HOST, gateway.port))
            reply = sock.recv(65535)
            status = int(reply.split(b" ", 2)[1])
            result = runner.invoke(cli, ["handle-notify", str(case.path), "--mode", mode,
                                         "--store", offline])
            assert status == expected_status(result.stdout, result.stderr, reply_code), (
                f"{case.stem}: served {status}, handle-notify {result.stdout.strip()} {result.stderr}")
            assert table(served) == table(offline), case.stem
    assert gateway.alive()
    if workers:
        assert re.search(r"\[udp worker \d\] method=NOTIFY", gateway.log())


def _register_carol_offline(store: str) -> None:
    service = open_test_service(store)
    try:
        request = RegisterRequest("lab-carol-dev1@127.0.0.1", 1, (
            ContactUpdate("sip:carol@127.0.0.1:5091;transport=udp", 3600),),
            user_agent="sipp-lab-ua carol")
        service.app.run(Register("sip:carol@example.com", request), time.time())
        service.catch_up()
    finally:
        service.close()
