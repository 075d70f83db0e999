"""us -> Kamailio: registrations at our `serve` reach a real Kamailio registrar and watcher.

sipp REGISTERs at our service, which PUBLISHes every change to the Kamailio presence
server. The Kamailio registrar is subscribed there (reginfo_subscribe) and applies each
NOTIFY with reginfo_handle_notify: `kamcmd ul.dump` must list exactly our bindings, with
our Call-IDs, CSeqs and expiries. A sipp watcher subscribed at the presence server gets a
NOTIFY per PUBLISH whose body is the document we published, byte for byte.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.e2e.conftest import free_port
from tests.e2e.sipp_peer import SippPeer
from tests.interop.conftest import (DOMAIN, HOST, SCENARIOS, KamailioLab, our_bindings,
                                    start_service, wait_for)

BOB = "sip:bob@example.com"
KEY = "bob@example.com"  # Kamailio 5.6.3 keys NOTIFY-learned bindings user@host (use_domain=0)


def kamailio_view(registrar, key: str = KEY) -> dict[str, tuple[str, int, int]]:
    return {c.address: (c.callid, c.cseq, c.expires) for c in registrar.ul_dump() if c.aor == key}


def expect_at_kamailio(registrar, lab: KamailioLab, us, wanted: dict[str, tuple[str, int, float]],
                       timeout: float = 10) -> None:
    """Wait until Kamailio's location table holds exactly `wanted` (Call-ID, CSeq, expiry
    as absolute time +-3 s) under the NOTIFY key, and nothing else."""
    def matches():
        view = kamailio_view(registrar)
        others = [c for c in registrar.ul_dump() if c.aor != KEY]
        now = time.time()
        return not others and set(view) == set(wanted) and all(
            view[c][:2] == wanted[c][:2] and abs(now + view[c][2] - wanted[c][2]) <= 3
            for c in wanted)
    wait_for(matches, timeout, f"ul.dump {KEY} = {wanted}",
             lambda: f"ul.dump: {registrar.ul_dump()}\nours: {our_bindings(us)}\n"
                     f"{us.log()[-4000:]}\n{lab.logs()}")


def published(presence, aor: str = BOB) -> list[tuple[int, bytes]]:
    """(source port, body) of each PUBLISH for `aor` the presence server received, in order;
    a retransmission (same Call-ID and CSeq, logged before tm absorbs it) counts once."""
    found, seen = [], set()
    for uri, port, call_id, cseq, text in re.findall(
            r"IOP-RX PUBLISH (\S+) from [\d.]+:(\d+)/\w+ ci=(\S+) cs=(\d+)\n(.*?)\nIOP-END",
            presence.log(10**7), re.S):
        if uri == aor and (call_id, cseq) not in seen:
            seen.add((call_id, cseq))
            head, _, body = text.partition("\n\n")
            found.append((int(port), body.encode()))
    return found


@pytest.mark.parametrize("kamailio_compat", [False, True], ids=["rfc-bodies", "kamailio-bodies"])
def test_register_changes_reach_kamailio(kamailio, registrations, gateways, sqlite_url, sipp,
                                         kamailio_compat):
    presence = kamailio.start_presence()
    registrar = kamailio.start_registrar(presence)
    registrar.reginfo_subscribe(BOB, 600)
    watcher = SippPeer(sipp, SCENARIOS / "watcher.xml", free_port(), registrations(0).workdir,
                       keys={"user": "bob", "domain": DOMAIN, "expires": 600}, calls=1,
                       timeout=600, extra=(f"{HOST}:{presence.port}",), name="watcher")
    try:
        watcher.start()
        us = start_service(gateways, sqlite_url, presence, kamailio_compat=kamailio_compat)
        ua = registrations(us.port)
        dev1, dev2 = "sip:bob@127.0.0.1:7201", "sip:bob@127.0.0.1:7202"

        at = ua.register("bob", "b-dev1", 1, f"<{dev1}>", 600)
        expect_at_kamailio(registrar, kamailio, us, {dev1: ("b-dev1", 1, at + 600)})

        at = ua.register("bob", "b-dev1", 2, f"<{dev1}>", 300)  # refresh, shorter
        expect_at_kamailio(registrar, kamailio, us, {dev1: ("b-dev1", 2, at + 300)})
        dev1_expiry = at + 300

        at = ua.register("bob", "b-dev2", 1, f"<{dev2}>;q=0.5", 1800)  # a second device
        expect_at_kamailio(registrar, kamailio, us, {dev1: ("b-dev1", 2, dev1_expiry),
                                                     dev2: ("b-dev2", 1, at + 1800)})

        ua.register("bob", "b-dev2", 2, f"<{dev2}>;expires=0", 0)  # de-register one device
        expect_at_kamailio(registrar, kamailio, us, {dev1: ("b-dev1", 2, dev1_expiry)})

        ua.register("bob", "b-dev1", 3, "*", 0)  # Contact: *
        expect_at_kamailio(registrar, kamailio, us, {})

        # the watcher got every document we published, in order, as we published it; the
        # others are Kamailio's own: the registrar re-publishes NOTIFY-learned bindings
        # when its usrloc timer removes the one we reported unregistered (expires 0)
        ours = [body for port, body in published(presence) if port == us.port and body]
        assert len(ours) == 5, published(presence)
        def notified():
            bodies = [m.body.replace(b"\r\n", b"\n") for m in watcher.received("NOTIFY")]
            return [b for b in bodies if b in ours] == ours
        wait_for(notified, 10, "a NOTIFY per PUBLISH with the published body",
                 lambda: f"{watcher.describe(20)}\npublished: {published(presence)}")
        assert all(answer is not None and answer.status == 200
                   for _, answer in watcher.exchanges("NOTIFY"))
    finally:
        watcher.stop()


def test_register_changes_reach_kamailio_over_tcp(kamailio, registrations, gateways, sqlite_url):
    """With `outbound_proxy = "sip:...;transport=tcp"` every PUBLISH goes over a TCP
    connection to the Kamailio presence server (answered on it), with the same outcome."""
    presence = kamailio.start_presence()
    registrar = kamailio.start_registrar(presence)
    registrar.reginfo_subscribe(BOB, 600)
    us = start_service(gateways, sqlite_url, presence, transport="tcp")
    ua = registrations(us.port)
    dev1, dev2 = "sip:bob@127.0.0.1:7211", "sip:bob@127.0.0.1:7212"

    at = ua.register("bob", "t-dev1", 1, f"<{dev1}>", 600)
    expect_at_kamailio(registrar, kamailio, us, {dev1: ("t-dev1", 1, at + 600)})
    dev1_expiry = at + 600
    at = ua.register("bob", "t-dev2", 1, f"<{dev2}>", 1800)
    expect_at_kamailio(registrar, kamailio, us, {dev1: ("t-dev1", 1, dev1_expiry),
                                                 dev2: ("t-dev2", 1, at + 1800)})
    ua.register("bob", "t-dev1", 2, "*", 0)
    expect_at_kamailio(registrar, kamailio, us, {})

    received = re.findall(r"IOP-RX PUBLISH sip:bob@example\.com from [\d.]+:(\d+)/(\w+) ",
                          presence.log(10**7))
    ours = [(int(port), proto) for port, proto in received if int(port) != registrar.port]
    assert len(ours) >= 4, received  # three documents and the removal
    assert {proto for _, proto in ours} == {"tcp"}, received
    assert len({port for port, _ in ours}) == 1, "one connection, reused"
