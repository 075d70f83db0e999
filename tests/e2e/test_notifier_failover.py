"""Two `serve` nodes on one PostgreSQL store: one notifies every watcher, the other takes
over when it dies.

A watcher (answering each NOTIFY where its Via says) SUBSCRIBEs at node B while node A
holds the store's keeper lock: A sends the NOTIFYs (it finds the subscription in the
store), including for a REGISTER that B took. A is then killed (SIGKILL): B takes the lock
and resumes the subscription with full state and the next version and CSeq, and notifies
the changes after that itself.
"""

from __future__ import annotations

import signal
import threading
import time

import pytest

from tests.e2e.conftest import HOST, free_port
from tests.e2e.watching import UdpWatcher, register

pytestmark = pytest.mark.postgres
AOR = "sip:alice@example.com"


def node_config(port: int, node: str) -> str:
    return (f'[listen]\nudp = ["{HOST}:{port}"]\ntcp = ["{HOST}:{port}"]\n'
            f'[node]\nid = "{node}"\n'
            '[reginfo]\ndefault_domain = "example.com"\npublish_reginfo = false\n')


def sender_port(notify) -> int:
    return int(notify.via.split()[1].split(";")[0].rsplit(":", 1)[1])


def test_the_lock_holder_notifies_and_the_standby_takes_over(gateways, postgres_url):
    port_a, port_b = free_port(), free_port()
    a = gateways.start(postgres_url, node_config(port_a, "node-a"))
    deadline = time.monotonic() + 10
    while "leading on this node" not in a.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    b = gateways.start(postgres_url, node_config(port_b, "node-b"))
    assert "leading on this node" in a.log() and "leading" not in b.log()
    assert register(port_a, "alice", "sip:alice@192.0.2.50:5060", 600, 1).startswith("SIP/2.0 200")
    watcher = UdpWatcher(AOR)
    watcher.subscribe(port_b)

    def notified(count: int, timeout: float = 15):
        return watcher.wait(count, timeout,
                            lambda: f"--- A\n{a.log()[-3000:]}\n--- B\n{b.log()[-3000:]}")

    first = notified(1)[0]
    assert first.full and first.version == 0 and sender_port(first) == port_a
    assert register(port_b, "alice", "sip:alice@192.0.2.51:5060", 600, 1, "laptop") \
        .startswith("SIP/2.0 200")
    second = notified(2)[1]
    assert not second.full and second.version == 1 and sender_port(second) == port_a
    a.process.send_signal(signal.SIGKILL)
    a.process.wait(timeout=10)
    third = notified(3, timeout=20)[2]
    assert third.full and third.version == 2 and third.cseq == 3
    assert sender_port(third) == port_b
    assert {"sip:alice@192.0.2.50:5060", "sip:alice@192.0.2.51:5060"} == set(third.contacts())
    assert register(port_b, "alice", "sip:alice@192.0.2.51:5060", 0, 2, "laptop") \
        .startswith("SIP/2.0 200")
    fourth = notified(4)[3]
    assert not fourth.full and fourth.version == 3 and sender_port(fourth) == port_b
    stopping = threading.Thread(target=b.stop)  # before the store goes with the test
    stopping.start()
    last = notified(5)[4]
    stopping.join(30)
    assert (last.state.state, last.state.reason) == ("terminated", "deactivated")
    assert b.process.returncode == 0
    watcher.close()
