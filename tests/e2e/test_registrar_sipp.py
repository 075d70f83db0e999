"""sipp drives the registrar of a real `serve` (RFC 3261 10.3) over UDP and over TCP.

Each test runs one scenario of tests/e2e/sipp/ with `-m 1` against a gateway of its own and
requires sipp to exit 0: every expected response arrived and every `ereg`/`strcmp` check in
the scenario held (a failed check marks the call failed, and sipp then exits 1). The store
is then read through the CLI (`query --json`, `audit AOR --json`). Only 127.0.0.1 is used;
sipp runs to completion under a subprocess timeout and every gateway is stopped by PID.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import HOST, RunningGateway, free_port

SCENARIOS = Path(__file__).resolve().parent / "sipp"
DOMAIN = "example.com"
TRANSPORTS = ("udp", "tcp")
SIPP_FLAGS = {"udp": "u1", "tcp": "t1"}
INSTANCE = "<urn:uuid:00000000-0000-1000-8000-000000000002>"
SLACK = 3  # seconds allowed between our clock readings and the gateway's


@dataclass(frozen=True)
class SippRun:
    """One finished sipp run: who it registered as and from where."""

    user: str
    transport: str
    local_port: int
    call_id: str
    started: float
    finished: float

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{DOMAIN}"

    def contact(self, user: str | None = None) -> str:
        """The Contact URI of the scenarios: sip:USER@LOCAL_IP:LOCAL_PORT;transport=UDP|TCP."""
        port, transport = self.local_port, self.transport.upper()  # sipp's [transport] is UDP/TCP
        return f"sip:{user or self.user}@{HOST}:{port};transport={transport}"

    @property
    def dev2(self) -> str:
        return self.contact(f"{self.user}-dev2")

    @property
    def received(self) -> str:
        return f"sip:{HOST}:{self.local_port};transport={self.transport}"

    def assert_expiry(self, expires: float, lifetime: int) -> None:
        assert self.started + lifetime - SLACK <= expires <= self.finished + lifetime + SLACK, (
            f"expiry {expires} is not now + {lifetime} "
            f"(run between {self.started:.0f} and {self.finished:.0f})")


def run_sipp(sipp: str, gateway: RunningGateway, tmp_path: Path, scenario: str, transport: str,
             user: str, *extra: str) -> SippRun:
    """Run SCENARIOS/scenario once (-m 1) as a UAC and require exit status 0."""
    local_port = free_port()
    call_id = f"{user}@e2e.test"
    command = [
        sipp, f"{HOST}:{gateway.port}", "-sf", str(SCENARIOS / scenario),
        "-t", SIPP_FLAGS[transport], "-m", "1", "-i", HOST, "-p", str(local_port),
        "-cid_str", call_id, "-key", "user", user, "-key", "domain", DOMAIN,
        "-trace_err", "-trace_msg", "-nostdin",
        "-timeout", "20s", "-timeout_error", "-recv_timeout", "5000", *extra,
    ]
    started = time.time()
    result = subprocess.run(command, check=False, cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    finished = time.time()
    if result.returncode != 0:
        traces = "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')}"
                           for path in sorted(tmp_path.glob(f"{Path(scenario).stem}_*.log")))
        pytest.fail(f"sipp {scenario} over {transport} exited {result.returncode}\n"
                    f"command: {' '.join(command)}\nstderr:\n{result.stderr}\n{traces}\n"
                    f"--- gateway log\n{gateway.log()}")
    return SippRun(user, transport, local_port, call_id, started, finished)


def bindings(gateway: RunningGateway, aor: str) -> dict[str, dict]:
    """The AoR's current bindings from `query --json`, by contact URI."""
    result = gateway.cli("query", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    return {row["contact"]: row for row in rows if row["aor"] == aor}


def history(gateway: RunningGateway, aor: str) -> list[dict]:
    result = gateway.cli("audit", aor, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def contact_events(events: list[dict]) -> list[tuple[str, str]]:
    """(event, contact) of the per-binding events, leaving out the registration.* ones."""
    return [(e["event"], e["contact"]) for e in events if e["contact"] is not None]


def user_for(name: str, transport: str) -> str:
    return f"sipp-{name}-{transport}"


# 1 --------------------------------------------------------------------------------------

def check_registered(gateway: RunningGateway, run: SippRun) -> None:
    rows = bindings(gateway, run.aor)
    assert list(rows) == [run.contact()]
    row = rows[run.contact()]
    assert (row["callid"], row["cseq"]) == (run.call_id, 1)
    assert row["received"] == run.received
    assert row["user_agent"] == "pua-reginfo-e2e sipp"
    assert row["state"] == "active"
    run.assert_expiry(row["expires"], 600)
    assert contact_events(history(gateway, run.aor)) == [("registered", run.contact())]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_register_one_contact(gateways, sqlite_url, sipp, tmp_path, transport):
    """REGISTER, Expires 600 -> 200 whose Contact has expires=600; stored with Call-ID/CSeq."""
    gateway = gateways.start(sqlite_url)
    run = run_sipp(sipp, gateway, tmp_path, "register.xml", transport,
                   user_for("register", transport))
    check_registered(gateway, run)


@pytest.mark.postgres
def test_register_one_contact_on_postgresql(gateways, postgres_url, sipp, tmp_path):
    gateway = gateways.start(postgres_url)
    run = run_sipp(sipp, gateway, tmp_path, "register.xml", "udp", "sipp-register-pg")
    check_registered(gateway, run)


# 2, 3 -----------------------------------------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
def test_refresh_same_call_id_next_cseq(gateways, sqlite_url, sipp, tmp_path, transport):
    """CSeq 1 then CSeq 2 on the same Call-ID -> two 200s; the binding now has CSeq 2."""
    gateway = gateways.start(sqlite_url)
    run = run_sipp(sipp, gateway, tmp_path, "refresh.xml", transport,
                   user_for("refresh", transport))
    rows = bindings(gateway, run.aor)
    assert list(rows) == [run.contact()]
    assert (rows[run.contact()]["callid"], rows[run.contact()]["cseq"]) == (run.call_id, 2)
    run.assert_expiry(rows[run.contact()]["expires"], 600)
    assert contact_events(history(gateway, run.aor)) == [
        ("registered", run.contact()), ("refreshed", run.contact())]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_refresh_changes_expires(gateways, sqlite_url, sipp, tmp_path, transport):
    """A refresh with Expires 120 -> 200 with expires=120; the binding expires in 120 s."""
    gateway = gateways.start(sqlite_url)
    run = run_sipp(sipp, gateway, tmp_path, "change-expires.xml", transport,
                   user_for("expires", transport))
    rows = bindings(gateway, run.aor)
    assert list(rows) == [run.contact()]
    assert rows[run.contact()]["cseq"] == 2
    run.assert_expiry(rows[run.contact()]["expires"], 120)
    events = [e for e in history(gateway, run.aor) if e["contact"] is not None]
    assert contact_events(events) == [("registered", run.contact()), ("refreshed", run.contact())]
    run.assert_expiry(events[0]["expires"], 600)
    run.assert_expiry(events[1]["expires"], 120)


# 4, 5, 6 --------------------------------------------------------------------------------

def check_two_contacts(row: dict, dev2: dict) -> None:
    assert (row["q"], row["instance"], row["reg_id"]) == (0.8, None, None)
    assert dev2["q"] == 0.4
    assert dev2["instance"].strip('"') == INSTANCE
    assert dev2["reg_id"] == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_several_contacts_in_one_register(gateways, sqlite_url, sipp, tmp_path, transport):
    """Two Contacts (q=0.8; q=0.4 with +sip.instance and reg-id) -> 200 lists both."""
    gateway = gateways.start(sqlite_url)
    run = run_sipp(sipp, gateway, tmp_path, "several-contacts.xml", transport,
                   user_for("several", transport))
    rows = bindings(gateway, run.aor)
    assert sorted(rows) == sorted([run.contact(), run.dev2])
    check_two_contacts(rows[run.contact()], rows[run.dev2])
    for row in rows.values():
        assert (row["callid"], row["cseq"]) == (run.call_id, 1)
        run.assert_expiry(row["expires"], 600)
    assert sorted(contact_events(history(gateway, run.aor))) == sorted([
        ("registered", run.contact()), ("registered", run.dev2)])


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_deregister_one_contact(gateways, sqlite_url, sipp, tmp_path, transport):
    """Contact ...;expires=0 for one of two -> 200 lists only the other one."""
    gateway = gateways.start(sqlite_url)
    run = run_sipp(sipp, gateway, tmp_path, "deregister-one.xml", transport,
                   user_for("deregister", transport))
    rows = bindings(gateway, run.aor)
    assert list(rows) == [run.dev2]
    assert rows[run.dev2]["q"] == 0.4 and rows[run.dev2]["reg_id"] == 1
    run.assert_expiry(rows[run.dev2]["expires"], 600)
    events = contact_events(history(gateway, run.aor))
    assert sorted(events[:2]) == sorted([("registered", run.contact()), ("registered", run.dev2)])
    assert events[2:] == [("unregistered", run.contact())]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_contact_star_removes_every_binding(gateways, sqlite_url, sipp, tmp_path, transport):
    """Contact: * with Expires: 0 -> 200 without Contact; nothing left for the AoR."""
    gateway = gateways.start(sqlite_url)
    run = run_sipp(sipp, gateway, tmp_path, "wildcard.xml", transport,
                   user_for("star", transport))
    assert bindings(gateway, run.aor) == {}
    events = history(gateway, run.aor)
    changes = contact_events(events)
    both = sorted([run.contact(), run.dev2])
    assert [e for e, _ in changes] == ["registered"] * 2 + ["unregistered"] * 2
    assert sorted(c for _, c in changes[:2]) == sorted(c for _, c in changes[2:]) == both
    assert events[-1]["event"] == "registration.terminated"


# 7, 8 -----------------------------------------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
def test_out_of_order_cseq_is_refused(gateways, sqlite_url, sipp, tmp_path, transport):
    """CSeq 5, then CSeq 4 (Expires 300) on the same Call-ID -> 400; the binding is unchanged."""
    gateway = gateways.start(sqlite_url)
    run = run_sipp(sipp, gateway, tmp_path, "out-of-order-cseq.xml", transport,
                   user_for("cseq", transport))
    rows = bindings(gateway, run.aor)
    assert list(rows) == [run.contact()]
    assert (rows[run.contact()]["callid"], rows[run.contact()]["cseq"]) == (run.call_id, 5)
    run.assert_expiry(rows[run.contact()]["expires"], 600)
    assert contact_events(history(gateway, run.aor)) == [("registered", run.contact())]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_interval_too_brief(gateways, sqlite_url, sipp, tmp_path, transport):
    """Expires 10 -> 423 with Min-Expires: 60; nothing is stored."""
    gateway = gateways.start(sqlite_url)
    run = run_sipp(sipp, gateway, tmp_path, "too-brief.xml", transport,
                   user_for("brief", transport))
    result = gateway.cli("query", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert gateway.cli("audit", run.aor, "--json").returncode != 0  # no history at all


# 9 --------------------------------------------------------------------------------------

def test_udp_retransmission_is_answered_and_applied_once(gateways, sqlite_url, sipp, tmp_path):
    """The same REGISTER (same branch) twice over UDP -> two byte-identical 200s, one change.

    -nr: sipp must neither retransmit on its own nor take the second 200 for a retransmission
    of the first (see retransmission.xml).
    """
    gateway = gateways.start(sqlite_url)
    run = run_sipp(sipp, gateway, tmp_path, "retransmission.xml", "udp", "sipp-retrans-udp",
                   "-nr")
    rows = bindings(gateway, run.aor)
    assert list(rows) == [run.contact()]
    assert (rows[run.contact()]["callid"], rows[run.contact()]["cseq"]) == (run.call_id, 1)
    events = history(gateway, run.aor)
    assert [e["event"] for e in events].count("registered") == 1
    assert contact_events(events) == [("registered", run.contact())]
