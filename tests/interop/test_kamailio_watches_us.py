"""Kamailio watches us: a real Kamailio 5.6 registrar subscribes to our notifier.

Our `serve` is the registrar of alice. The Kamailio registrar (its pua_reginfo
outbound_proxy pointed at us, PUBLISH off) runs reginfo_subscribe("sip:alice@example.com"):
its SUBSCRIBE reaches our notifier, whose NOTIFYs (full state, then partial state, over
the TCP its Contact asks for) it applies with reginfo_handle_notify. `kamcmd ul.dump` must
follow our location table through registrations, a refresh and de-registrations, with our
Call-IDs, CSeqs and expiries.
"""

from __future__ import annotations

import re
import time

from tests.e2e.conftest import free_port
from tests.interop.conftest import DOMAIN, HOST, KamailioLab, our_bindings, wait_for

ALICE = "sip:alice@example.com"
KEY = "alice@example.com"  # Kamailio 5.6 keys NOTIFY-learned bindings user@host
PHONE, LAPTOP = "sip:alice@192.0.2.31:5060", "sip:alice@192.0.2.32:5060"


class Notifier:
    """Our service as the registrar's `presence` (where its SUBSCRIBEs go)."""

    def __init__(self, port: int) -> None:
        self.port = port


def notifier_config(port: int) -> str:
    return (f'[listen]\nudp = ["{HOST}:{port}"]\ntcp = ["{HOST}:{port}"]\n'
            f'[registrar]\ndomains = ["{DOMAIN}"]\nmin_expires = 1\n[node]\nid = "interop"\n'
            f'[reginfo]\ndefault_domain = "{DOMAIN}"\npublish_reginfo = false\n')


def follows(registrar, us) -> bool:
    """Kamailio's bindings of alice are ours: contact, Call-ID, CSeq, expiry (+-3 s)."""
    theirs = {c.address: (c.callid, c.cseq, c.expires) for c in registrar.ul_dump()
              if c.aor == KEY}
    ours = {b["contact"]: (b["callid"], b["cseq"], b["expires"])
            for b in our_bindings(us, ALICE)}
    now = time.time()
    return set(theirs) == set(ours) and all(
        theirs[c][:2] == ours[c][:2] and abs(now + theirs[c][2] - ours[c][2]) <= 3
        for c in ours)


def test_kamailio_subscribed_with_reginfo_subscribe_follows_our_location_table(
        kamailio: KamailioLab, gateways, registrations, tmp_path):
    port = free_port()
    us = gateways.start(f"sqlite:///{tmp_path / 'us.db'}", notifier_config(port))
    registrar = kamailio.start_registrar(Notifier(port), publish=False)
    phones = registrations(port)
    phones.register("alice", "phone-1", 1, PHONE, 600)

    def context() -> str:
        return (f"ul.dump: {registrar.ul_dump()}\nours: {our_bindings(us)}\n"
                f"{us.log()[-4000:]}\n{kamailio.logs()[-6000:]}")

    registrar.reginfo_subscribe(ALICE, 600)
    wait_for(lambda: follows(registrar, us) and registrar.ul_dump(), 15,
             "Kamailio's bindings from our full state", context)
    phones.register("alice", "laptop-1", 1, LAPTOP, 300)
    wait_for(lambda: follows(registrar, us) and len(registrar.ul_dump()) == 2, 10,
             "the laptop at Kamailio", context)
    phones.register("alice", "phone-1", 2, PHONE, 900)
    wait_for(lambda: follows(registrar, us)
             and any(c.cseq == 2 for c in registrar.ul_dump()), 10,
             "the phone's refresh at Kamailio", context)
    phones.register("alice", "phone-1", 3, PHONE, 0)
    wait_for(lambda: follows(registrar, us) and len(registrar.ul_dump()) == 1, 10,
             "the phone gone at Kamailio", context)
    phones.register("alice", "laptop-1", 2, LAPTOP, 0)
    wait_for(lambda: follows(registrar, us) and not registrar.ul_dump(), 10,
             "no binding left at Kamailio", context)
    assert "method=SUBSCRIBE aor=sip:alice@example.com result=200" in us.log()
    notifies = re.findall(r"IOP-RX NOTIFY \S+ from [\d.]+:\d+/(\w+) ci=\S+\n(.*?)\nIOP-END",
                          registrar.log(10**7), re.S)
    assert len(notifies) >= 5 and all(transport == "tcp" for transport, _ in notifies)
    states = [re.search(r'state="(full|partial)"', text).group(1) for _, text in notifies]
    assert states[0] == "full" and states.count("partial") >= 4, states
    assert all(int(rc) > 0 for rc in re.findall(r"IOP-NOTIFY ci=\S+ cseq=\d+ rc=(-?\d+)",
                                                registrar.log(10**7)))
