"""sipp watchers SUBSCRIBE to a real `serve` for alice's reg state (RFC 6665, RFC 3680 5).

Each test writes its sipp scenario (tests/e2e/watching.py), runs it once against the
gateway, changes alice's registration by REGISTER or by the `contact` commands, and reads
what the watcher received from sipp's trace: Subscription-State, CSeq, and the reginfo
document (version, full or partial, each contact's state and event). Only 127.0.0.1;
sipp and every gateway are stopped by PID.
"""

from __future__ import annotations

import json
import signal

import pytest

from tests.e2e.conftest import HOST, Gateways, free_port
from tests.e2e.sipp_peer import sipp_peers  # noqa: F401 (fixture)
from tests.e2e.watching import notifies, register, watcher_scenario

AOR = "sip:alice@example.com"
PHONE = "sip:alice@192.0.2.20:5060"
LAPTOP = "sip:alice@192.0.2.21:5060"
WAIT = 10.0


def notifier_config(port: int, extra: str = "") -> str:
    return (f'[listen]\nudp = ["{HOST}:{port}"]\ntcp = ["{HOST}:{port}"]\n'
            '[reginfo]\npublish_reginfo = false\ndefault_domain = "example.com"\n' + extra)


class Watching:
    """One gateway and one sipp watcher of alice."""

    def __init__(self, gateways: Gateways, sipp_peers, tmp_path, store_url: str,
                 steps: list[tuple], watcher: str = "sip:watcher@example.com",
                 extra: str = "") -> None:
        self.port = free_port()
        self.config = notifier_config(self.port, extra)
        self.gateways, self.store_url = gateways, store_url
        self.gateway = gateways.start(store_url, self.config)
        self.scenario = watcher_scenario(tmp_path / f"watcher-{len(steps)}.xml", AOR, watcher,
                                         steps)
        self.sipp_peers = sipp_peers
        self.peer = None

    def watch(self):
        self.peer = self.sipp_peers.start(self.scenario, free_port(), calls=1,
                                          extra=(f"{HOST}:{self.port}",))
        return self.peer

    def register(self, contact: str, expires: int, cseq: int, call_id: str = "phone") -> None:
        status = register(self.port, "alice", contact, expires, cseq, call_id)
        assert status.startswith("SIP/2.0 200"), status

    def notified(self, count: int, timeout: float = WAIT):
        """The first `count` NOTIFYs the watcher received (fails with context otherwise)."""
        def enough(_):
            found = notifies(self.peer)
            return found if len(found) >= count else None
        return self.peer.wait_until(enough, timeout, f"{count} NOTIFY(s)", self.context)[:count]

    def context(self) -> str:
        return f"--- gateway log\n{self.gateway.log()}"

    def cli(self, *args: str) -> str:
        done = self.gateway.cli(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def finished(self) -> None:
        assert self.peer.wait(WAIT) == 0, self.peer.describe()


@pytest.fixture
def watching(gateways, sipp_peers, tmp_path, sqlite_url):
    def make(steps, **options) -> Watching:
        return Watching(gateways, sipp_peers, tmp_path, sqlite_url, steps, **options)
    return make


def test_full_state_then_partial_notifies_one_version_apart_then_refresh_and_unsubscribe(
        watching):
    w = watching([("subscribe", 600), *[("notify",)] * 5, ("refresh", 600), ("notify",),
                  ("refresh", 0), ("notify",)])
    w.register(PHONE, 600, 1)
    w.watch()
    first = w.notified(1)[0]
    assert first.full and first.version == 0 and first.cseq == 1
    assert first.state.state == "active" and 590 <= first.state.expires <= 600
    assert first.contacts()[PHONE]["state"] == "active"
    assert first.contacts()[PHONE]["event"] == "registered"
    w.register(LAPTOP, 600, 1, call_id="laptop")
    w.notified(2)
    w.register(PHONE, 300, 2)
    w.notified(3)
    w.register(LAPTOP, 0, 2, call_id="laptop")
    w.notified(4)
    w.register(PHONE, 0, 3)
    changes = w.notified(5)[1:]
    assert [n.version for n in changes] == [1, 2, 3, 4]
    assert [n.cseq for n in changes] == [2, 3, 4, 5]
    assert not any(n.full for n in changes)
    assert [(uri, c["state"], c["event"]) for n in changes for uri, c in n.contacts().items()] \
        == [(LAPTOP, "active", "registered"), (PHONE, "active", "refreshed"),
            (LAPTOP, "terminated", "unregistered"), (PHONE, "terminated", "unregistered")]
    assert changes[1].contacts()[PHONE]["expires"] == "300"
    assert [n.registration_state for n in changes] == ["active", "active", "active",
                                                       "terminated"]
    refreshed, final = w.notified(7)[5:]
    assert refreshed.full and refreshed.version == 5 and refreshed.state.state == "active"
    assert refreshed.contacts() == {}  # the terminated contacts were reported once
    assert final.full and final.version == 6 and final.cseq == 7
    assert (final.state.state, final.state.reason) == ("terminated", "timeout")
    w.finished()
    assert json.loads(w.cli("status", "--json"))["watchers"] == []


def test_a_fetch_gets_one_full_state_notify_that_ends_it(watching):
    w = watching([("subscribe", 0), ("notify",)])
    w.register(PHONE, 600, 1)
    w.watch()
    (only,) = w.notified(1)
    assert only.full and only.version == 0
    assert (only.state.state, only.state.reason) == ("terminated", "timeout")
    assert only.contacts()[PHONE]["state"] == "active"
    w.finished()
    subscribe_ok = w.peer.sent_exchanges("SUBSCRIBE")
    assert subscribe_ok and subscribe_ok[0][1].header("Expires") == "0"


def test_each_administrative_event_as_a_watching_phone_sees_it(watching):
    w = watching([("subscribe", 600), *[("notify",)] * 10], watcher=AOR,
                 extra="[notifier]\nwatch_own = true\n")
    w.register(PHONE, 600, 1)
    w.watch()
    w.notified(1)
    config = ("--config", str(w.gateways.tmp_path / "gateway-0.toml"))
    w.cli("contact", "shorten", AOR, PHONE, "--expires", "120", *config)
    w.notified(2)
    w.cli("contact", "deactivate", AOR, PHONE, *config)
    w.notified(3)
    w.register(PHONE, 600, 2)
    w.notified(4)
    w.cli("contact", "probation", AOR, PHONE, "--retry-after", "30", *config)
    w.notified(5)
    w.register(PHONE, 600, 3)
    w.notified(6)
    w.cli("contact", "reject", AOR, PHONE, *config)
    w.notified(7)
    w.cli("contact", "add", AOR, LAPTOP, "--expires", "600", *config)
    w.notified(8)
    w.cli("contact", "shorten", AOR, LAPTOP, "--expires", "1", *config)
    seen = w.notified(10)[1:]
    told = [(c["state"], c["event"], c.get("expires"), c.get("retry-after"))
            for n in seen for c in n.contacts().values()]
    assert told == [("active", "shortened", "120", None),
                    ("terminated", "deactivated", "0", None),
                    ("active", "registered", "600", None),
                    ("terminated", "probation", "0", "30"),
                    ("active", "registered", "600", None),
                    ("terminated", "rejected", "0", None),
                    ("active", "created", "600", None),
                    ("active", "shortened", "1", None),
                    ("terminated", "expired", "0", None)]
    assert [n.version for n in seen] == list(range(1, 10))
    assert seen[-1].registration_state == "terminated"
    w.finished()


@pytest.mark.parametrize("code", [481, 408])
def test_a_notify_answered_481_or_408_ends_the_subscription(watching, code):
    w = watching([("subscribe", 600), ("notify", code)])
    w.watch()
    w.notified(1)
    w.finished()
    w.peer.wait_until(lambda _: not _watchers(w), WAIT, "the watcher gone", w.context)
    w.register(PHONE, 600, 1)
    assert len(notifies(w.peer)) == 1
    assert "NOTIFY failed" in w.gateway.log()


def _watchers(w: Watching) -> list:
    return json.loads(w.cli("status", "--json"))["watchers"]


def test_a_subscription_that_is_not_refreshed_ends_with_timeout(watching):
    w = watching([("subscribe", 2), ("notify",), ("notify",)],
                 extra="[notifier]\nmin_expires = 1\n")
    w.watch()
    first, last = w.notified(2)
    assert first.state.state == "active" and first.state.expires <= 2
    assert (last.state.state, last.state.reason) == ("terminated", "timeout")
    assert last.version == 1 and last.full
    w.finished()


def test_a_restart_resumes_the_subscription_with_the_next_version(watching):
    w = watching([("subscribe", 600), ("notify",), ("notify",), ("notify",), ("notify",)])
    w.register(PHONE, 600, 1)
    w.watch()
    w.notified(1)
    w.register(LAPTOP, 600, 1, call_id="laptop")
    w.notified(2)
    w.gateway.process.send_signal(signal.SIGKILL)
    w.gateway.process.wait(timeout=10)
    w.gateway = w.gateways.start(w.store_url, w.config)
    resumed = w.notified(3)[2]
    assert resumed.full and resumed.version == 2 and resumed.cseq == 3
    assert set(resumed.contacts()) == {PHONE, LAPTOP}
    w.register(PHONE, 0, 2)
    after = w.notified(4)[3]
    assert not after.full and after.version == 3 and after.cseq == 4
    assert after.contacts()[PHONE]["state"] == "terminated"
    w.finished()
