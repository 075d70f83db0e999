"""The service's own subscriber against the service's own notifier: two `serve`s in sync.

One-way: node A is the registrar, node B keeps a reg subscription for each of four AoRs
at A (`[[subscribe]]`, A as its outbound proxy). B's Contact is a lossy relay
(tests/e2e/lossy_relay.py) that answers some of A's NOTIFYs itself and drops them, so
that B sees version gaps. After 1,000 random REGISTERs at A, B's location table holds
exactly A's bindings; every gap made B ask for full state again (RFC 3680 4.4), and A sent
it.

Two-way: A and B are both registrars, each subscribed to the other for alice and listed
as the other's sync peer (`[notifier] peers`): each learns the other's bindings, and a
NOTIFY never carries back what it taught (no echo), so the NOTIFYs stop once both agree.
"""

from __future__ import annotations

import json
import random
import re
import time

import pytest

from tests.e2e.conftest import HOST, Gateways, RunningGateway, free_port
from tests.e2e.lossy_relay import LossyRelay
from tests.e2e.watching import register

USERS = ("alice", "bob", "carol", "dave")
CHANGES = 1000
SYNC_WAIT = 30.0


def node_config(port: int, *, proxy: int | None = None, contact_port: int | None = None,
                subscribe: tuple[str, ...] = (), peers: tuple[str, ...] = ()) -> str:
    text = (f'[listen]\nudp = ["{HOST}:{port}"]\ntcp = ["{HOST}:{port}"]\n'
            '[reginfo]\npublish_reginfo = false\ndefault_domain = "example.com"\n')
    if proxy is not None:
        text += (f'outbound_proxy = "sip:{HOST}:{proxy}"\n'
                 f'server_address = "sip:reginfo@{HOST}:{contact_port or port}"\n')
    if peers:
        text += "[notifier]\npeers = [" + ", ".join(f'"{p}"' for p in peers) + "]\n"
    for user in subscribe:
        text += f'[[subscribe]]\nuri = "sip:{user}@example.com"\nexpires = 600\n'
    return text


def bindings(gateway: RunningGateway) -> dict[tuple[str, str], int]:
    done = gateway.cli("query", "--json")
    assert done.returncode == 0, done.stderr
    return {(row["aor"], row["contact"]): row["expires"] for row in json.loads(done.stdout)}


def same(a: dict, b: dict, slack: int = 3) -> bool:
    return a.keys() == b.keys() and all(abs(a[k] - b[k]) <= slack for k in a)


def wait_in_sync(a: RunningGateway, b: RunningGateway, timeout: float = SYNC_WAIT) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        left, right = bindings(a), bindings(b)
        if same(left, right):
            return left
        if time.monotonic() > deadline:
            raise AssertionError(f"not in sync:\nA {sorted(left)}\nB {sorted(right)}\n"
                                 f"--- A log\n{a.log()[-4000:]}\n--- B log\n{b.log()[-4000:]}")
        time.sleep(0.5)


@pytest.fixture
def relays():
    made: list[LossyRelay] = []
    yield lambda *args, **kw: made.append(LossyRelay(*args, **kw)) or made[-1]
    for relay in made:
        relay.close()


def test_a_subscriber_stays_in_sync_over_1000_changes_with_notifies_lost(
        gateways: Gateways, relays, tmp_path):
    port_a, port_b = free_port(), free_port()
    relay = relays(port_b, loss=0.04)
    a = gateways.start(f"sqlite:///{tmp_path / 'a.db'}", node_config(port_a))
    b = gateways.start(f"sqlite:///{tmp_path / 'b.db'}",
                       node_config(port_b, proxy=port_a, contact_port=relay.port,
                                   subscribe=USERS))
    draw = random.Random(1000)
    cseqs: dict[tuple[str, int], int] = {}
    for _ in range(CHANGES):
        user, device = draw.choice(USERS), draw.randrange(3)
        cseq = cseqs[(user, device)] = cseqs.get((user, device), 0) + 1
        expires = draw.choice((0, 120, 600, 600, 3600))
        status = register(port_a, user, f"sip:{user}@192.0.2.{device + 1}:5060", expires, cseq,
                          call_id=f"{user}-{device}")
        assert status.startswith("SIP/2.0 200"), status
    # One last change per AoR, none of it lost: its NOTIFY shows every loss before it.
    relay.loss = 0.0
    for user in USERS:
        assert register(port_a, user, f"sip:{user}@192.0.2.9:5060", 600, 1, f"{user}-last") \
            .startswith("SIP/2.0 200")
    held = wait_in_sync(a, b)
    assert len(held) >= len(USERS)
    dropped = [n for n in relay.seen if n.dropped]
    assert dropped, "the relay dropped no NOTIFY"
    # Every loss was followed, in its dialog, by a partial state that showed the gap and
    # then by full state, which B asked for with a SUBSCRIBE in the dialog.
    for lost in dropped:
        later = [n for n in relay.seen
                 if n.call_id == lost.call_id and n.cseq > lost.cseq and not n.dropped]
        assert later, f"nothing followed the lost {lost}"
        assert any(n.full for n in later), f"no full state after the lost {lost}"
    refreshes = re.findall(r"SUBSCRIBE sip:\S+ refresh", b.log())
    assert len(refreshes) >= len({n.call_id for n in dropped}), b.log()[-3000:]
    partials = [n for n in relay.seen if not n.full]
    assert len(partials) > 100, len(partials)


def test_two_nodes_subscribed_to_each_other_stay_in_sync_without_echo(
        gateways: Gateways, tmp_path):
    port_a, port_b = free_port(), free_port()
    peer_a, peer_b = f"sip:reginfo@{HOST}:{port_a}", f"sip:reginfo@{HOST}:{port_b}"
    a = gateways.start(f"sqlite:///{tmp_path / 'a.db'}",
                       node_config(port_a, proxy=port_b, subscribe=("alice",), peers=(peer_b,)))
    b = gateways.start(f"sqlite:///{tmp_path / 'b.db'}",
                       node_config(port_b, proxy=port_a, subscribe=("alice",), peers=(peer_a,)))
    assert register(port_a, "alice", "sip:alice@192.0.2.1:5060", 600, 1, "phone") \
        .startswith("SIP/2.0 200")
    assert register(port_b, "alice", "sip:alice@192.0.2.2:5060", 600, 1, "laptop") \
        .startswith("SIP/2.0 200")
    held = wait_in_sync(a, b)
    assert {contact for _, contact in held} == {"sip:alice@192.0.2.1:5060",
                                                "sip:alice@192.0.2.2:5060"}
    assert register(port_a, "alice", "sip:alice@192.0.2.1:5060", 0, 2, "phone") \
        .startswith("SIP/2.0 200")
    held = wait_in_sync(a, b)
    assert {contact for _, contact in held} == {"sip:alice@192.0.2.2:5060"}
    time.sleep(2)
    settled = _notifies(a) + _notifies(b)
    time.sleep(3)
    assert _notifies(a) + _notifies(b) == settled, "NOTIFYs keep flowing: an echo"
    # Each node was told only the other's own change: three documents each way at most
    # (full state, one change, maybe a full state after the other's first).
    assert settled <= 8, settled


def _notifies(gateway: RunningGateway) -> int:
    return len(re.findall(r"method=NOTIFY ", gateway.log()))
