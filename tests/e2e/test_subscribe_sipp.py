"""A real `serve` SUBSCRIBEs for alice's reg state (RFC 6665, RFC 3680) at sipp as notifier.

sipp runs one of tests/e2e/sipp/notifier*.xml on a port of its own, which the gateway
reaches as its outbound proxy: it answers each SUBSCRIBE 200 with a To tag, a Contact and
`Expires: granted`, then sends a NOTIFY in the dialog (Event reg, Subscription-State,
reginfo full state with sip:alice@192.0.2.10:5070). The checks are made on sipp's message
trace (the SUBSCRIBEs the gateway sent, the answers it gave to sipp's NOTIFYs) and on
`query --json`. The gateway gets its subscription from a `[[subscribe]]` table (the
unsubscribe test uses `pua-reginfo subscribe` instead). Only 127.0.0.1; sipp and every
gateway are stopped by PID.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass

import pytest

from tests.e2e.conftest import HOST, Gateways, RunningGateway, free_port
from tests.e2e.sipp_peer import SippPeer, TracedMessage, sipp_peers  # noqa: F401 (fixture)

AOR = "sip:alice@example.com"
NOTIFIED = "sip:alice@192.0.2.10:5070"  # the contact in the scenarios' documents
NOTIFIED_2 = "sip:alice@192.0.2.11:5070"  # added by notifier-gap.xml's partial document
REQUESTED = 60  # the Expires the gateway asks for
WAIT = 10.0  # seconds the gateway may take to send what it must

Exchange = tuple[TracedMessage, TracedMessage | None]


# --- the gateway: serve with a [[subscribe]] table ------------------------------------------

def subscribe_config(port: int, sipp_port: int, subscribe: bool, workers: int = 0) -> str:
    """serve on 127.0.0.1:port, SUBSCRIBEing through sipp on sipp_port; no PUBLISH."""
    text = (f'[listen]\nudp = ["{HOST}:{port}"]\ntcp = ["{HOST}:{port}"]\n'
            f"udp_workers = {workers}\n"
            f'[registrar]\ndomains = ["example.com"]\n[node]\nid = "e2e"\n'
            f'[reginfo]\ndefault_domain = "example.com"\npublish_reginfo = false\n'
            f'outbound_proxy = "sip:{HOST}:{sipp_port}"\n'
            f'server_address = "sip:reginfo@{HOST}:{port}"\n')
    if subscribe:
        text += f'[[subscribe]]\nuri = "{AOR}"\nexpires = {REQUESTED}\n'
    return text


@dataclass
class Setup:
    gateways: Gateways
    store_url: str
    peer: SippPeer
    port: int
    config: str
    gateway: RunningGateway | None = None

    def start_gateway(self) -> RunningGateway:
        self.gateway = self.gateways.start(self.store_url, self.config)
        return self.gateway

    def context(self) -> str:
        return f"--- gateway log\n{self.gateway.log() if self.gateway else '(not started)'}"

    def explain(self) -> str:
        return f"{self.peer.describe(60)}\n{self.context()}"

    def subscribes(self, count: int, timeout: float = WAIT) -> list[Exchange]:
        """The first `count` SUBSCRIBEs, each answered by sipp."""
        return self.peer.wait_for_exchanges("SUBSCRIBE", count, timeout, self.context)[:count]

    def notifies(self, count: int, timeout: float = WAIT) -> list[Exchange]:
        """The first `count` NOTIFYs sipp sent, each with the gateway's final answer."""
        return self.peer.wait_for_sent_exchanges("NOTIFY", count, timeout, self.context)[:count]


def start(gateways, sqlite_url, sipp_peers, scenario: str, granted: int, *,
          subscribe: bool = True, workers: int = 0) -> Setup:
    sipp_port = free_port()
    peer = sipp_peers.start(scenario, sipp_port, keys={"granted": granted})
    port = free_port()
    while port == sipp_port:
        port = free_port()
    setup = Setup(gateways, sqlite_url, peer, port,
                  subscribe_config(port, sipp_port, subscribe, workers))
    setup.start_gateway()
    return setup


def answered_by_workers(setup: Setup) -> None:
    """Every NOTIFY was taken by a UDP worker (and claimed in serve, which keeps the dialog)."""
    log = setup.gateway.log()
    assert re.search(r"\[udp worker \d\] method=NOTIFY", log), log
    assert not re.search(r"INFO pua_reginfo\.sip method=NOTIFY", log), log


# --- checks ------------------------------------------------------------------------------

def check_common(request: TracedMessage, setup: Setup, expires: int) -> None:
    headers = request.headers
    via = headers.get_all("Via")
    assert len(via) == 1, via
    assert re.fullmatch(rf"SIP/2\.0/UDP {re.escape(HOST)}:{setup.port};branch=z9hG4bK[^;]+;rport",
                        via[0]), via[0]
    assert headers.get("Max-Forwards") == "70"
    assert re.fullmatch(rf"<sip:reginfo@{re.escape(HOST)}:{setup.port}>;tag=[^;]+",
                        headers.get("From") or ""), request
    assert re.fullmatch(r"[0-9]+ SUBSCRIBE", headers.get("CSeq") or ""), request
    assert headers.get_all("Contact") == [f"<sip:reginfo@{HOST}:{setup.port}>"], request
    assert headers.get("Event") == "reg"
    assert headers.get("Expires") == str(expires), request
    assert headers.get_all("Accept") == ["application/reginfo+xml"], request
    assert request.body == b"" and headers.get("Content-Length") in (None, "0")


def check_initial(request: TracedMessage, setup: Setup) -> None:
    """An initial SUBSCRIBE: to the resource, through the outbound proxy, no To tag."""
    assert request.start_line == f"SUBSCRIBE {AOR} SIP/2.0", request
    assert request.headers.get_all("Route") == [f"<sip:{HOST}:{setup.peer.port};lr>"], request
    assert request.header("To") == f"<{AOR}>", request
    check_common(request, setup, REQUESTED)


def check_in_dialog(request: TracedMessage, previous: Exchange, setup: Setup,
                    expires: int = REQUESTED) -> None:
    """A SUBSCRIBE in the dialog `previous` made: sipp's Contact, same Call-ID and tags,
    CSeq + 1, no Route (sipp sent no Record-Route)."""
    first, answer = previous
    assert answer is not None and answer.status == 200
    assert request.start_line == f"SUBSCRIBE sip:sipp@{HOST}:{setup.peer.port} SIP/2.0", request
    assert "Route" not in request.headers, request
    assert request.call_id == first.call_id, "not in the dialog: another Call-ID"
    assert request.tag("From") == first.tag("From")
    assert request.header("To") == f"<{AOR}>;tag={answer.tag('To')}", request
    assert request.cseq == first.cseq + 1, f"CSeq {request.cseq} after {first.cseq}"
    check_common(request, setup, expires)


def check_accepted(notifies: list[Exchange]) -> None:
    for notify, answer in notifies:
        assert answer is not None and answer.status == 200, (
            f"NOTIFY answered {answer.start_line if answer else None}:\n{notify}")


def notified_bindings(gateway: RunningGateway, count: int, timeout: float = 5.0
                      ) -> dict[str, dict]:
    """alice's bindings from `query --json` by contact, once there are `count` of them."""
    deadline = time.monotonic() + timeout
    while True:
        result = gateway.cli("query", "--json")
        assert result.returncode == 0, result.stderr
        rows = {row["contact"]: row for row in json.loads(result.stdout) if row["aor"] == AOR}
        if len(rows) >= count or time.monotonic() >= deadline:
            return rows
        time.sleep(0.2)


def run_checks(setup: Setup, checks) -> None:
    try:
        checks()
    except AssertionError as error:
        raise AssertionError(f"{error}\n{setup.explain()}") from None


# --- tests ---------------------------------------------------------------------------------

@pytest.mark.parametrize("workers", [0, 2])
def test_subscribe_notify_and_refresh(gateways, sqlite_url, sipp_peers, workers):
    """SUBSCRIBE -> 200 (Expires 10) and NOTIFY version 0 -> the gateway answers 200 and
    stores the contact (origin notify); about 5 s before expiry a refresh in the dialog.
    With UDP workers too: they take the NOTIFYs, serve's keeper claims them."""
    setup = start(gateways, sqlite_url, sipp_peers, "notifier.xml", granted=10,
                  workers=workers)

    def checks():
        [first] = setup.subscribes(1)
        check_initial(first[0], setup)
        check_accepted(setup.notifies(1))
        rows = notified_bindings(setup.gateway, 1)
        assert list(rows) == [NOTIFIED], rows
        assert rows[NOTIFIED]["origin"] == "notify"
        assert rows[NOTIFIED]["state"] == "active"
        refresh = setup.subscribes(2, timeout=12)[1]
        check_in_dialog(refresh[0], first, setup)
        lead = refresh[0].time - first[1].time
        assert 3.5 <= lead <= 7.5, f"refresh {lead:.1f} s after the 200, expected about 5 s"
        check_accepted(setup.notifies(2))
        if workers:
            answered_by_workers(setup)
    run_checks(setup, checks)


def test_481_to_refresh_subscribes_afresh(gateways, sqlite_url, sipp_peers):
    """sipp answers the refresh 481: a new initial SUBSCRIBE (new Call-ID and From tag,
    no To tag) follows at once, and the new dialog's NOTIFY is accepted."""
    setup = start(gateways, sqlite_url, sipp_peers, "notifier-481.xml", granted=10)

    def checks():
        first, refresh, again = setup.subscribes(3, timeout=15)
        check_initial(first[0], setup)
        check_in_dialog(refresh[0], first, setup)
        assert refresh[1].status == 481
        check_initial(again[0], setup)
        assert again[0].call_id != first[0].call_id
        assert again[0].tag("From") != first[0].tag("From")
        assert again[0].time - refresh[1].time <= 2.0, "no prompt re-SUBSCRIBE after the 481"
        notifies = setup.notifies(2)
        check_accepted(notifies)
        assert notifies[1][0].call_id == again[0].call_id
    run_checks(setup, checks)


@pytest.mark.parametrize("workers", [0, 2])
def test_version_gap_asks_for_full_state(gateways, sqlite_url, sipp_peers, workers):
    """NOTIFY version 0 (full), then version 2 (partial): both answered 200, then a
    SUBSCRIBE in the dialog at once (the refresh would be ~55 s away) and its full-state
    NOTIFY version 3 is accepted; both contacts are stored. With UDP workers too."""
    setup = start(gateways, sqlite_url, sipp_peers, "notifier-gap.xml", granted=60,
                  workers=workers)

    def checks():
        [first] = setup.subscribes(1)
        check_initial(first[0], setup)
        full, partial = setup.notifies(2)
        check_accepted([full, partial])
        again = setup.subscribes(2, timeout=5)[1]
        check_in_dialog(again[0], first, setup)
        assert again[0].time - partial[1].time <= 3.0, "no prompt re-SUBSCRIBE after the gap"
        check_accepted(setup.notifies(3))
        rows = notified_bindings(setup.gateway, 2)
        assert sorted(rows) == [NOTIFIED, NOTIFIED_2], rows
        assert {row["origin"] for row in rows.values()} == {"notify"}
        if workers:
            answered_by_workers(setup)
    run_checks(setup, checks)


def test_deactivated_subscribes_afresh(gateways, sqlite_url, sipp_peers):
    """Subscription-State: terminated;reason=deactivated -> 200, then a new initial
    SUBSCRIBE at once (new Call-ID), whose NOTIFY is accepted."""
    setup = start(gateways, sqlite_url, sipp_peers, "notifier-terminated.xml", granted=10)

    def checks():
        [first] = setup.subscribes(1)
        check_initial(first[0], setup)
        active, ended = setup.notifies(2)
        check_accepted([active, ended])
        assert ended[0].header("Subscription-State") == "terminated;reason=deactivated"
        again = setup.subscribes(2)[1]
        check_initial(again[0], setup)
        assert again[0].call_id != first[0].call_id
        assert again[0].time - ended[1].time <= 2.0, "no prompt re-SUBSCRIBE after deactivated"
        notifies = setup.notifies(3)
        check_accepted(notifies)
        assert notifies[2][0].call_id == again[0].call_id
    run_checks(setup, checks)


def test_cli_subscribe_then_unsubscribe(gateways, sqlite_url, sipp_peers):
    """`pua-reginfo subscribe` while serve runs -> an initial SUBSCRIBE within seconds;
    `pua-reginfo unsubscribe` -> Expires: 0 in the dialog; the final NOTIFY
    (terminated;reason=timeout) is accepted and nothing more is sent."""
    setup = start(gateways, sqlite_url, sipp_peers, "notifier.xml", granted=30, subscribe=False)

    def checks():
        time.sleep(1.0)
        assert setup.peer.received("SUBSCRIBE") == [], "SUBSCRIBE without any subscription"
        result = setup.gateway.cli("subscribe", AOR, "--expires", str(REQUESTED))
        assert result.returncode == 0, result.stderr
        [first] = setup.subscribes(1)
        check_initial(first[0], setup)
        check_accepted(setup.notifies(1))
        result = setup.gateway.cli("unsubscribe", AOR)
        assert result.returncode == 0, result.stderr
        ending = setup.subscribes(2)[1]
        check_in_dialog(ending[0], first, setup, expires=0)
        final = setup.notifies(2)[1]
        assert final[0].header("Subscription-State") == "terminated;reason=timeout"
        check_accepted([final])
        time.sleep(2.0)
        assert len(setup.peer.received("SUBSCRIBE")) == 2, "SUBSCRIBE after unsubscribing"
    run_checks(setup, checks)


def test_restart_keeps_the_dialog(gateways, sqlite_url, sipp_peers):
    """Stop serve while the subscription is active, start it on the same store and port:
    it refreshes the SAME dialog (Call-ID, tags, CSeq + 1) and accepts its NOTIFY."""
    setup = start(gateways, sqlite_url, sipp_peers, "notifier.xml", granted=15)

    def checks():
        [first] = setup.subscribes(1)
        check_initial(first[0], setup)
        check_accepted(setup.notifies(1))
        assert setup.gateway.stop() == 0, setup.gateway.log()
        time.sleep(0.5)
        assert len(setup.peer.received("SUBSCRIBE")) == 1, "SUBSCRIBE while stopping"
        setup.start_gateway()
        refresh = setup.subscribes(2, timeout=20)[1]
        check_in_dialog(refresh[0], first, setup)
        assert refresh[0].time < first[1].time + 15, "refreshed only after the dialog expired"
        check_accepted(setup.notifies(2))
        assert {r.call_id for r in setup.peer.received("SUBSCRIBE")} == {first[0].call_id}
    run_checks(setup, checks)
