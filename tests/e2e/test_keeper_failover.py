"""Two `serve` nodes on one PostgreSQL store keep one SUBSCRIBE dialog, not two.

Only the node holding the store's keeper lock subscribes; when it stops, the standby takes
the recorded dialog over: it refreshes the same dialog (same Call-ID, higher CSeq) with its
own Contact, so the notifier's NOTIFYs follow it (RFC 6665 4.1.2.1, RFC 3261 12.2).
"""

from __future__ import annotations

import re
import time

import pytest

from tests.e2e.conftest import HOST, free_port
from tests.e2e.python_peer import PythonPeer

pytestmark = pytest.mark.postgres


def node_config(port: int, peer_port: int, node: str) -> str:
    return (f'[listen]\nudp = ["{HOST}:{port}"]\ntcp = ["{HOST}:{port}"]\n'
            f'[node]\nid = "{node}"\n'
            f'[reginfo]\ndefault_domain = "example.com"\npublish_reginfo = false\n'
            f'outbound_proxy = "sip:{HOST}:{peer_port}"\n'
            f'server_address = "sip:reginfo@{HOST}:{port}"\n'
            f'[[subscribe]]\nuri = "sip:alice@example.com"\nexpires = 60\n')


def test_one_dialog_per_store_and_the_standby_takes_it_over(gateways, postgres_url):
    peer = PythonPeer.start(free_port())
    peer.subscribe_expires = 10
    first_port, second_port = free_port(), free_port()
    try:
        first = gateways.start(postgres_url, node_config(first_port, peer.port, "node-a"))
        assert peer.wait_for(lambda p: len(p.subscribes) >= 1, 10), first.log()
        second = gateways.start(postgres_url, node_config(second_port, peer.port, "node-b"))
        time.sleep(5)  # two lock checks of the standby
        with peer.lock:
            call_ids = {m.headers.get("Call-ID") for m in peer.subscribes}
            contacts = {m.headers.get("Contact") for m in peer.subscribes}
        assert len(call_ids) == 1, call_ids
        assert contacts == {f"<sip:reginfo@{HOST}:{first_port}>"}, contacts
        (call_id,) = call_ids
        count = len(peer.subscribes)

        assert first.stop() == 0
        taken_over = peer.wait_for(
            lambda p: any(m.headers.get("Contact") == f"<sip:reginfo@{HOST}:{second_port}>"
                          for m in p.subscribes[count:]), 15)
        assert taken_over, second.log()
        with peer.lock:
            later = peer.subscribes[count:]
        takeover = next(m for m in later if str(second_port) in m.headers.get("Contact"))
        assert takeover.headers.get("Call-ID") == call_id  # the same dialog, refreshed
        assert re.search(r";\s*tag=", takeover.headers.get("To"))
        cseqs = [int(m.headers.get("CSeq").split()[0]) for m in peer.subscribes]
        assert cseqs == sorted(cseqs) and len(set(cseqs)) == len(cseqs), cseqs
        status = second.cli("status", "--json")
        assert status.returncode == 0, status.stderr
        assert '"state": "active"' in status.stdout
    finally:
        peer.stop()
