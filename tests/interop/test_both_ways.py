"""Both ways at once: Kamailio and our service publish to one presence server and each
watches the other's AoRs, through a few hundred mixed REGISTER changes on both sides.

The Kamailio registrar owns alice0..3 and is subscribed (reginfo_subscribe) to bob0..3;
our `serve` owns bob0..3 and is subscribed ([[subscribe]]) to alice0..3. sipp sends the
same kind of random but reproducible change stream to each registrar at the same time
(add a device, refresh it with a new expiry, remove it with Expires 0; one contact per
REGISTER). Afterwards both location tables hold exactly what the UAs left: every binding
once, with its last Call-ID, CSeq and expiry (no lost change, no duplicate), and nothing
travelled back to its owner (no echo).
"""

from __future__ import annotations

import random
import re
import threading
import time

from tests.interop.conftest import our_bindings, start_service, wait_for

USERS = 4
DEVICES = 3
CHANGES = 150  # per side


def change_stream(side: str, users: str, seed: int) -> tuple[list[tuple], dict]:
    """REGISTER rows (user, Call-ID, CSeq, Contact, Expires) and the bindings they leave:
    {(user, contact): (Call-ID, CSeq, expires)}."""
    rng = random.Random(seed)
    cseq: dict[tuple, int] = {}
    live: dict[tuple, tuple] = {}
    rows = []
    base = 7300 if side == "kamailio" else 7600
    for _ in range(CHANGES):
        user = f"{users}{rng.randrange(USERS)}"
        device = rng.randrange(DEVICES)
        contact = f"sip:{user}@127.0.0.1:{base + 10 * int(user[-1]) + device}"
        key = (user, contact)
        callid = f"{side}-{user}-dev{device}"
        cseq[key] = cseq.get(key, 0) + 1
        if key in live and rng.random() < 0.4:
            rows.append((user, callid, cseq[key], f"<{contact}>", 0))
            del live[key]
        else:
            expires = rng.randrange(600, 3600)
            rows.append((user, callid, cseq[key], f"<{contact}>", expires))
            live[key] = (callid, cseq[key], expires)
    return rows, live


def test_both_directions_at_once(kamailio, registrations, gateways, sqlite_url):
    presence = kamailio.start_presence()
    registrar = kamailio.start_registrar(presence)
    for n in range(USERS):
        registrar.reginfo_subscribe(f"sip:bob{n}@example.com", 3600)
    us = start_service(gateways, sqlite_url, presence,
                       [f"sip:alice{n}@example.com" for n in range(USERS)])
    wait_for(lambda: len([s for s in us.cli("status", "--json").stdout.split('"state": "active"')
                          ]) > USERS, 10, "our subscriptions active", us.log)

    alice_rows, alice_live = change_stream("kamailio", "alice", 1)
    bob_rows, bob_live = change_stream("us", "bob", 2)
    sent_at = time.time()
    senders = [threading.Thread(target=registrations(registrar.port).batch, args=(alice_rows,)),
               threading.Thread(target=registrations(us.port).batch, args=(bob_rows,))]
    failures = []
    for sender in senders:
        sender.run = (lambda run: lambda: _record(run, failures))(sender.run)
        sender.start()
    for sender in senders:
        sender.join(timeout=150)
    assert not failures, failures[0]
    done_at = time.time()

    def ours() -> dict:
        return {(row["aor"], row["contact"]): row for row in our_bindings(us)}

    def kamailio_table() -> dict:
        table: dict = {}
        for c in registrar.ul_dump():
            table.setdefault((c.aor, c.address), []).append(c)
        return table

    def converged() -> bool:
        rows, table = ours(), kamailio_table()
        want_ours = {(f"sip:{u}@example.com", c): v for (u, c), v in {**alice_live,
                                                                       **bob_live}.items()}
        want_kam = {(u, c): v for (u, c), v in alice_live.items()}
        want_kam |= {(f"{u}@example.com", c): v for (u, c), v in bob_live.items()}
        return (set(rows) == set(want_ours) and set(table) == set(want_kam)
                and all(len(found) == 1 for found in table.values())
                and all((rows[k]["callid"], rows[k]["cseq"]) == v[:2] for k, v in want_ours.items())
                and all((table[k][0].callid, table[k][0].cseq) == v[:2]
                        for k, v in want_kam.items()))

    wait_for(converged, 30, "both location tables = what the UAs left",
             lambda: _difference(ours(), kamailio_table(), alice_live, bob_live)
             + f"\n{us.log()[-3000:]}\n{kamailio.logs()}")

    rows, table = ours(), kamailio_table()
    now = time.time()
    for (user, contact), (_, _, expires) in {**alice_live, **bob_live}.items():
        # expiry: from the REGISTER's time, somewhere between sending the first and the last
        expiry = rows[(f"sip:{user}@example.com", contact)]["expires"]
        assert sent_at + expires - 3 <= expiry <= done_at + expires + 3, (user, contact, expiry)
    for (key, contact), [found] in table.items():
        user = key.split("@")[0]
        expires = {**alice_live, **bob_live}[(user, contact)][2]
        assert sent_at + expires - 3 <= now + found.expires <= done_at + expires + 3
    # who owns what: alice* came to us only by NOTIFY, bob* only by REGISTER
    assert all(row["origin"] == ("notify" if row["aor"].startswith("sip:alice") else "register")
               for row in rows.values())
    # no echo from our side: we never PUBLISHed an AoR we learned from a NOTIFY
    publishes = re.findall(r"IOP-RX PUBLISH sip:(\w+)@\S+ from [\d.]+:(\d+)/", presence.log(10**8))
    assert not [u for u, port in publishes if int(port) == us.port and u.startswith("alice")]
    # and nothing keeps bouncing: no PUBLISH at all once both sides have settled
    settled = len(re.findall("IOP-RX PUBLISH", presence.log(10**8)))
    time.sleep(2.5)  # more than two rounds of Kamailio's 1 s usrloc timer
    assert len(re.findall("IOP-RX PUBLISH", presence.log(10**8))) == settled
    assert us.alive() and registrar.alive() and presence.alive()


def _record(run, failures: list) -> None:
    try:
        run()
    except BaseException as error:  # noqa: BLE001 (reported by the test thread)
        failures.append(error)


def _difference(rows: dict, table: dict, alice_live: dict, bob_live: dict) -> str:
    lines = []
    for (user, contact), (callid, cseq, _) in sorted({**alice_live, **bob_live}.items()):
        mine = rows.get((f"sip:{user}@example.com", contact))
        key = user if user.startswith("alice") else f"{user}@example.com"
        theirs = table.get((key, contact), [])
        lines.append(f"{user} {contact} want {callid}/{cseq}; ours "
                     f"{(mine['callid'], mine['cseq']) if mine else None}; kamailio "
                     f"{[(c.callid, c.cseq) for c in theirs]}")
    wanted = {(f"sip:{u}@example.com", c) for u, c in {**alice_live, **bob_live}}
    lines += [f"extra ours: {k}" for k in rows if k not in wanted]
    lines += [f"extra kamailio: {k}" for k in table
              if (k[0].split("@")[0], k[1]) not in {**alice_live, **bob_live}]
    return "\n".join(lines)
