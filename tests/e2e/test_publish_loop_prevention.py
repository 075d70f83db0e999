"""Loop prevention by origin, counted on the wire, across a restart.

One `serve` publishes to, and subscribes at, the same peer (subscribe_on_register): the
peer's NOTIFYs teach it contacts of the very AoRs it publishes. 1,000 seeded random
operations interleave local REGISTER changes with NOTIFYs (some of whose contacts expire
a few seconds later); serve is restarted half-way. Every local change must reach the
presence server as exactly one PUBLISH (bodies counted per resource, versions gap-free),
no PUBLISH may list a NOTIFY-learned contact, and nothing learned from a NOTIFY, nor its
expiry, may cause a PUBLISH.
"""

from __future__ import annotations

import json
import random
import re
import socket
import uuid
from collections import Counter, defaultdict

from sip_gateway.reginfo import parse_reginfo
from tests.e2e.conftest import HOST, free_port
from tests.e2e.python_peer import PythonPeer

OPERATIONS = 1_000
AORS = [f"user{i}" for i in range(10)]
NOTIFIED_HOST = "10.1.1.1"


class Registrar:
    """Sends REGISTERs and keeps the model of each AoR's local contacts."""

    def __init__(self, port: int):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(5)
        self.cseq: Counter = Counter()
        self.local: dict[str, set[str]] = defaultdict(set)
        self.call_ids = {user: uuid.uuid4().hex for user in AORS}

    def register(self, user: str, contact: str, expires: int) -> None:
        self.cseq[user] += 1
        me = self.sock.getsockname()[1]
        text = (f"REGISTER sip:example.com SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {HOST}:{me};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:{user}@example.com>;tag=loop\r\n"
                f"To: <sip:{user}@example.com>\r\nCall-ID: {self.call_ids[user]}\r\n"
                f"CSeq: {self.cseq[user]} REGISTER\r\nContact: <{contact}>;expires={expires}\r\n"
                f"Content-Length: 0\r\n\r\n")
        self.sock.sendto(text.encode(), (HOST, self.port))
        answer = self.sock.recv(65535)
        assert answer.startswith(b"SIP/2.0 200"), answer[:200]
        if expires:
            self.local[user].add(contact)
        else:
            self.local[user].discard(contact)


def notified_document(resource: str, version: int, contacts: list[tuple[str, int]]) -> bytes:
    items = "".join(
        f'<contact id="n{index}" state="active" event="registered" expires="{expires}">'
        f"<uri>{uri}</uri></contact>" for index, (uri, expires) in enumerate(contacts))
    state = "active" if contacts else "terminated"
    return (f'<?xml version="1.0"?><reginfo xmlns="urn:ietf:params:xml:ns:reginfo" '
            f'version="{version}" state="full"><registration aor="{resource}" id="r" '
            f'state="{state}">{items}</registration></reginfo>').encode()


def test_notified_contacts_are_never_published_and_local_changes_exactly_once(
        gateways, sqlite_url):
    peer = PythonPeer.start(free_port())
    port = free_port()
    config = (f'[reginfo]\ndefault_domain = "example.com"\npublish_reginfo = true\n'
              f'outbound_proxy = "sip:{HOST}:{peer.port}"\n'
              f'server_address = "sip:reginfo@{HOST}:{port}"\nsubscribe_on_register = true\n'
              f'[listen]\nudp = ["{HOST}:{port}"]\ntcp = ["{HOST}:{port}"]\n')
    rng = random.Random(3680)
    registrar = Registrar(port)
    expected: Counter = Counter()  # bodies per resource: one per local change
    removals: Counter = Counter()  # the last local binding went: one Expires: 0 each
    versions: Counter = Counter()  # per notifier dialog
    notifies = 0
    try:
        gateway = gateways.start(sqlite_url, config)
        for step in range(OPERATIONS):
            if step == OPERATIONS // 2:
                assert gateway.stop() == 0
                gateway = gateways.start(sqlite_url, config)
            dialogs = _dialogs(peer)
            if dialogs and rng.random() < 0.3:
                call_id, resource = rng.choice(sorted(dialogs.items()))
                user = resource.split(":")[1].split("@")[0]
                contacts = [(f"sip:{user}-n{j}@{NOTIFIED_HOST}", rng.choice([2, 600]))
                            for j in rng.sample(range(4), rng.randint(0, 3))]
                peer.notify(call_id, notified_document(resource, versions[call_id], contacts))
                versions[call_id] += 1
                notifies += 1
                assert peer.wait_for(lambda p, n=notifies: _notify_answers(p) >= n, 10)
                continue
            user = rng.choice(AORS)
            resource = f"sip:{user}@example.com"
            local = sorted(registrar.local[user])
            if local and rng.random() < 0.35:
                registrar.register(user, rng.choice(local), 0)
                if not registrar.local[user]:
                    removals[resource] += 1
            else:
                registrar.register(user, f"sip:{user}-d{rng.randint(0, 2)}@{HOST}:5999", 600)
            expected[resource] += 1
        assert notifies >= 150, "the run must interleave enough NOTIFYs"

        def done(p):
            bodies = Counter(_resource(m) for m in p.publishes if m.body)
            gone = Counter(_resource(m) for m in p.publishes if not m.body
                           and m.headers.get("Expires") == "0")
            return bodies == expected and gone == removals
        assert peer.wait_for(done, 30), _mismatch(peer, expected, removals)
        # NOTIFY-learned contacts of 2 s expire now; their expiry must stay unpublished.
        before = len(peer.publishes)
        assert peer.wait_for(lambda p: False, 4) is False
        assert len(peer.publishes) == before, [m.body[:300] for m in peer.publishes[before:]]
        bindings = json.loads(gateway.cli("query", "--json").stdout)
        assert any(NOTIFIED_HOST in b["contact"] and b["origin"] == "notify" for b in bindings)
        lapsed = [event for user in AORS
                  for event in json.loads(gateway.cli("audit", f"sip:{user}@example.com",
                                                      "--json").stdout)
                  if event["event"] == "expired" and NOTIFIED_HOST in (event["contact"] or "")]
        assert lapsed, "some NOTIFY-learned contacts must have expired during the run"
    finally:
        peer.stop()
    by_resource = defaultdict(list)
    for message in peer.publishes:
        if message.body:
            by_resource[_resource(message)].append(parse_reginfo(message.body))
    for resource, documents in by_resource.items():
        assert [d.version for d in documents] == list(range(len(documents))), resource
        for document in documents:
            for registration in document.registrations:
                for contact in registration.contacts:
                    assert NOTIFIED_HOST not in contact.uri, (resource, contact)


def _dialogs(peer: PythonPeer) -> dict[str, str]:
    with peer.lock:
        return {call_id: re.sub(r"[<>]|;.*", "", subscribe.headers.get("To"))
                for subscribe in peer.subscribes
                if (call_id := subscribe.headers.get("Call-ID")) in peer.dialogs}


def _notify_answers(peer: PythonPeer) -> int:
    return sum(1 for r in peer.responses if r.headers.get("CSeq", "").endswith("NOTIFY"))


def _resource(message) -> str:
    return message.uri


def _mismatch(peer, expected, removals) -> str:
    bodies = Counter(_resource(m) for m in peer.publishes if m.body)
    gone = Counter(_resource(m) for m in peer.publishes if not m.body)
    return f"bodies {dict(bodies)} != expected {dict(expected)}; removals {dict(gone)} vs {dict(removals)}"
