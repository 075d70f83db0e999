"""Hostile NOTIFYs through the whole handle-notify path: -1, a reason, nothing changed."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infrastructure.commands import ApplyNotify, NotifyContext
from sip_gateway.errors import PeerError
from sip_gateway.server.notify_modes import notify_mode, read_notify
from tests.support import open_test_service

VALID = (b'<?xml version="1.0"?><reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="0" '
         b'state="full"><registration aor="sip:eve@example.com" id="r" state="active">'
         b'<contact id="c" state="active" event="registered" expires="60" callid="x" cseq="1">'
         b'<uri>sip:eve@10.0.0.1</uri></contact></registration></reginfo>')

HOSTILE = {
    "xxe-file": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                + VALID[21:].replace(b"sip:eve@10.0.0.1", b"&x;"),
    "xxe-network": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]>'
                   + VALID[21:].replace(b"sip:eve@10.0.0.1", b"&x;"),
    "billion-laughs": b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
                      + b"".join(b'<!ENTITY %c "&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;">'
                                 % ((98 + i,) + (97 + i,) * 10) for i in range(8))
                      + b"]>" + VALID[21:].replace(b"sip:eve@10.0.0.1", b"&i;"),
    "deep-nesting": b"<reginfo>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</reginfo>",
    "ten-megabytes": VALID.replace(b"<uri>", b"<uri>" + b"x" * 10_000_000),
    "invalid-utf8": VALID.replace(b"sip:eve@10.0.0.1", b"sip:\xff\xfe@10.0.0.1"),
    "truncated": VALID[:120],
    "binary": bytes(range(256)) * 4,
}


@pytest.fixture
def service(sqlite_url):
    service = open_test_service(sqlite_url)
    yield service
    service.close()


def apply(service, data: bytes, mode: str):
    taking = notify_mode(mode, accept_unsolicited=True)
    try:
        intake = read_notify(data, taking)
    except PeerError as error:
        return -1, str(error)
    result = service.app.run(ApplyNotify(intake.document, NotifyContext(taking, "s")),
                             1_900_000_000.0)
    return result.code, result.reason


@pytest.mark.parametrize("mode", ["rfc", "kamailio"])
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_bodies_are_refused_and_change_nothing(service, name, mode):
    code, reason = apply(service, HOSTILE[name], mode)
    assert code == -1 and reason
    assert service.app.recorder.max_notification_id() in (None, 0)


def test_the_cli_reports_hostile_input_in_one_line(tmp_path, sqlite_url):
    path = tmp_path / "laughs.xml"
    path.write_bytes(HOSTILE["billion-laughs"])
    result = subprocess.run([sys.executable, "-m", "infrastructure.cli", "handle-notify", str(path),
                             "--store", sqlite_url], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (1, "-1\n")
    assert "DOCTYPE or entity declaration refused" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def mutations():
    positions = st.integers(0, len(VALID) - 1)
    return st.one_of(
        st.binary(max_size=400),
        st.tuples(positions, st.binary(max_size=8)).map(lambda p: VALID[:p[0]] + p[1] + VALID[p[0] + 1:]),
        positions.map(lambda p: VALID[:p]),
        st.tuples(positions, positions).map(lambda p: VALID[:min(p)] + VALID[max(p):]),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mutations(), mode=st.sampled_from(["rfc", "kamailio"]))
def test_mutated_documents_are_applied_whole_or_refused_whole(service, data, mode):
    before = service.app.recorder.max_notification_id() or 0
    code, reason = apply(service, data, mode)
    after = service.app.recorder.max_notification_id() or 0
    assert code in (1, 2, -1)
    if code == -1:  # refused documents store nothing, in both modes
        assert reason and after == before
