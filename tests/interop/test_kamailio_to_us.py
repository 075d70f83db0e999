"""Kamailio -> us: registrations at a real Kamailio registrar reach `pua-reginfo query`.

sipp REGISTERs at the Kamailio registrar (usrloc + pua_reginfo), which PUBLISHes each
change to the Kamailio presence server; our `serve` holds reg subscriptions there
([[subscribe]]) and applies the NOTIFYs in rfc mode. After every step the bindings in
`query --json` are exactly what Kamailio's `ul.dump` holds: contact, Call-ID, CSeq and
expiry (to the second, allowing for the round trip).
"""

from __future__ import annotations

import re
import time

import pytest

from tests.interop.conftest import (KamailioLab, our_bindings, start_service, wait_for)

ALICE = "sip:alice@example.com"
CAROL = "sip:carol@example.com"
NOBODY = "sip:nobody@example.com"  # never registered: presence NOTIFYs without a body


def ours(gateway, aor: str) -> dict[str, tuple]:
    return {row["contact"]: (row["callid"], row["cseq"], row["expires"], row["origin"])
            for row in our_bindings(gateway, aor)}


def expect(gateway, lab: KamailioLab, aor: str, wanted: dict[str, tuple[str, int, float]],
           timeout: float = 10) -> None:
    """Wait until `aor` has exactly the `wanted` contacts (Call-ID, CSeq, absolute
    expiry +-3 s), all learned from a NOTIFY."""
    def matches():
        rows = ours(gateway, aor)
        return set(rows) == set(wanted) and all(
            rows[c][:2] == wanted[c][:2] and abs(rows[c][2] - wanted[c][2]) <= 3
            and rows[c][3] == "notify" for c in wanted)
    wait_for(matches, timeout, f"{aor} = {wanted}",
             lambda: f"ours: {ours(gateway, aor)}\n{gateway.log()[-4000:]}\n{lab.logs()}")


@pytest.mark.parametrize("versions", [True, False], ids=["pua-versions", "pua-version-0"])
def test_register_changes_appear_in_query(kamailio, registrations, gateways, sqlite_url,
                                          versions):
    """rfc mode follows Kamailio whether pua counts versions (dlginfo_increase_version = 1)
    or writes version="0" in every document (the default), and when a REGISTER that
    changes two contacts makes pua open a second publication restarting at version 0:
    a full document in a later NOTIFY of the dialog (higher CSeq) is the new baseline."""
    presence = kamailio.start_presence()
    registrar = kamailio.start_registrar(presence, versions=versions)
    us = start_service(gateways, sqlite_url, presence, [ALICE, NOBODY])
    ua = registrations(registrar.port)
    dev1, dev2 = "sip:alice@127.0.0.1:7001", "sip:alice@127.0.0.1:7002"
    dev3, dev4 = "sip:alice@127.0.0.1:7003", "sip:alice@127.0.0.1:7004"

    at = ua.register("alice", "a-dev1", 1, f"<{dev1}>", 600)
    expect(us, kamailio, ALICE, {dev1: ("a-dev1", 1, at + 600)})

    at = ua.register("alice", "a-dev1", 2, f"<{dev1}>", 300)  # refresh, shorter
    expect(us, kamailio, ALICE, {dev1: ("a-dev1", 2, at + 300)})
    dev1_expiry = at + 300

    at = ua.register("alice", "a-dev2", 1, f"<{dev2}>;q=0.5", 1800)  # a second device
    expect(us, kamailio, ALICE, {dev1: ("a-dev1", 2, dev1_expiry), dev2: ("a-dev2", 1, at + 1800)})
    assert {r["contact"]: r["q"] for r in our_bindings(us, ALICE)}[dev2] == 0.5
    dev2_expiry = at + 1800

    # Two contacts in one REGISTER: pua PUBLISHes once per contact, at once; the later one
    # may open a second publication, and pua may answer a 412 by re-sending the older body
    # over the newer one, so the presence server itself can hold a stale document until
    # the next change (docs/kamailio-interop.md). A one-contact change follows.
    at = ua.register("alice", "a-pair", 1, f"<{dev3}>, <{dev4}>", 900)
    at3 = ua.register("alice", "a-pair", 2, f"<{dev3}>", 900)
    expect(us, kamailio, ALICE, {dev1: ("a-dev1", 2, dev1_expiry),
                                 dev2: ("a-dev2", 1, dev2_expiry),
                                 dev3: ("a-pair", 2, at3 + 900), dev4: ("a-pair", 1, at + 900)})

    ua.register("alice", "a-pair", 3, f"<{dev3}>;expires=0, <{dev4}>;expires=0", 0)
    ua.register("alice", "a-dev2", 2, f"<{dev2}>;expires=0", 0)  # de-register one device
    expect(us, kamailio, ALICE, {dev1: ("a-dev1", 2, dev1_expiry)})
    assert [c.address for c in registrar.ul_dump()] == [dev1]

    ua.register("alice", "a-dev1", 3, "*", 0)  # Contact: *
    expect(us, kamailio, ALICE, {})
    assert registrar.ul_dump() == []
    assert ours(us, NOBODY) == {}  # its NOTIFYs had no body (nothing ever published)
    assert us.alive() and registrar.alive() and presence.alive()


def test_kamailio_mode_keeps_what_reginfo_handle_notify_keeps(kamailio, registrations, gateways,
                                                              sqlite_url):
    """kamailio mode is reginfo_handle_notify's behaviour: it ignores a contact's `state`, so
    a contact pua reports `state="terminated" event="unregistered"` with the seconds it had
    left stays a live binding, as in a Kamailio subscriber; rfc mode (above) removes it."""
    presence = kamailio.start_presence()
    registrar = kamailio.start_registrar(presence, versions=False)
    us = start_service(gateways, sqlite_url, presence, [ALICE], notify_mode="kamailio")
    ua = registrations(registrar.port)
    dev1, dev2 = "sip:alice@127.0.0.1:7001", "sip:alice@127.0.0.1:7002"
    at1 = ua.register("alice", "a-dev1", 1, f"<{dev1}>", 600)
    at2 = ua.register("alice", "a-dev2", 1, f"<{dev2}>", 600)
    expect(us, kamailio, ALICE, {dev1: ("a-dev1", 1, at1 + 600), dev2: ("a-dev2", 1, at2 + 600)})
    ua.register("alice", "a-dev2", 2, f"<{dev2}>", 0)
    assert [c.address for c in registrar.ul_dump()] == [dev1]
    time.sleep(2)
    assert set(ours(us, ALICE)) == {dev1, dev2}


def test_expiry_at_kamailio_removes_binding(kamailio, registrations, gateways, sqlite_url):
    """A binding Kamailio's usrloc timer drops disappears here too (Kamailio publishes the
    remaining contacts; the expired one is just left out of its full document)."""
    presence = kamailio.start_presence()
    registrar = kamailio.start_registrar(presence)
    ua = registrations(registrar.port)
    stay, short = "sip:carol@127.0.0.1:7101", "sip:carol@127.0.0.1:7102"
    at = ua.register("carol", "c-stay", 1, f"<{stay}>", 600)
    us = start_service(gateways, sqlite_url, presence, [CAROL])  # subscribes after: full state
    expect(us, kamailio, CAROL, {stay: ("c-stay", 1, at + 600)})

    at_short = ua.register("carol", "c-short", 7, f"<{short}>", 3)
    expect(us, kamailio, CAROL, {stay: ("c-stay", 1, at + 600), short: ("c-short", 7, at_short + 3)},
           timeout=2.5)
    time.sleep(max(0.0, at_short + 3 - time.time()))
    expect(us, kamailio, CAROL, {stay: ("c-stay", 1, at + 600)}, timeout=8)
    assert [c.address for c in registrar.ul_dump()] == [stay]


def test_subscription_over_tcp(kamailio, registrations, gateways, sqlite_url):
    """outbound_proxy and server_address with `;transport=tcp`: the SUBSCRIBE and its
    refreshes go over our TCP connection, Kamailio's NOTIFYs come over TCP too, and the
    bindings arrive as over UDP."""
    presence = kamailio.start_presence()
    registrar = kamailio.start_registrar(presence)
    us = start_service(gateways, sqlite_url, presence, [CAROL], transport="tcp")
    ua = registrations(registrar.port)
    dev = "sip:carol@127.0.0.1:7301"

    at = ua.register("carol", "c-dev1", 1, f"<{dev}>", 600)
    expect(us, kamailio, CAROL, {dev: ("c-dev1", 1, at + 600)})
    ua.register("carol", "c-dev1", 2, f"<{dev}>", 0)
    expect(us, kamailio, CAROL, {})

    log = presence.log(10**7)
    subscribes = re.findall(r"IOP-RX SUBSCRIBE \S+ from [\d.]+:\d+/(\w+) ", log)
    assert subscribes and set(subscribes) == {"tcp"}, subscribes
    notifies = re.findall(r"IOP-TX NOTIFY (\S+) ci=", log)
    assert notifies and all(uri.endswith(";transport=tcp") for uri in notifies), notifies
