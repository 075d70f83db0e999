"""The 43 lab cases through `handle-notify --mode rfc`: the RFC 3680 outcome of each.

The lab's notifier numbered documents per AoR, so each case is sent on the subscription
of its first registration's AoR (`lab-bob` for cases 01-13, `lab-erin` for 17, 26, 30
and 31, and so on). RFC_OUTCOMES is the documented result per case: the code, the live
contacts (by port) of the AoRs it touches afterwards, and why.
"""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from infrastructure.cli import cli
from infrastructure.clock import SystemClock
from tests.integration.notify_cases import aor_key, cases
from tests.integration.test_notify_cases_kamailio import register_carol
from tests.integration.notify_cases import carol_register_time

CASES = cases()

# case: (code, {aor user: live contact ports afterwards}, why)
RFC_OUTCOMES = {
    "01": (1, {"bob": {6001}}, "full v0: c1 registered"),
    "02": (1, {"bob": {6001}}, "v1: c1 refreshed, CSeq 2"),
    "03": (1, {"bob": {6001}}, "v2: c1 refreshed, 120 s"),
    "04": (1, {"bob": {6001, 6002}}, "v3: c2 created, keyed by +sip.instance/reg-id"),
    "05": (1, {"bob": {6001, 6002, 6003}}, "full v4: c3 registered"),
    "06": (1, {"bob": {6001}}, "full v5 lists only c1: c2 and c3 end (absent from full state)"),
    "07": (1, {"bob": {6001}}, "v6: c3 already gone"),
    "08": (1, {"bob": {6001}}, "v7: c2 already gone"),
    "09": (2, {"bob": set()}, "v8: c1 deactivated"),
    "10": (2, {"bob": set()}, "v9: rejected, nothing left to end"),
    "11": (2, {"bob": set()}, "v10: probation, nothing left to end"),
    "12": (2, {"bob": set()}, "v11: c4 reported terminated: never created"),
    "13": (2, {"bob": set()}, "v12: registration terminated"),
    "14": (2, {"nobody": set()}, "terminated registration of an unknown AoR: valid, nothing to do"),
    "15": (2, {"ghost": set()}, "terminated contact of an unknown AoR; first document partial"),
    "16": (1, {"dave": {6021}}, "foreign domain accepted, keyed like the registrar"),
    "17": (1, {"erin": {6031}, "frank": {6041, 6042}}, "two registrations in one document"),
    "18": (-1, {}, "400: not well-formed"),
    "19": (-1, {}, "400: no reginfo root"),
    "20": (-1, {"grace": set()}, "489: Event presence"),
    "21": (1, {}, "NOTIFY without body: nothing to apply"),
    "22": (-1, {"heidi": set()}, "415: text/plain"),
    "23": (1, {"ivan": {6071}}, "expires is optional: default_expires applies"),
    "24": (1, {"judy": {6081}}, "callid is optional: the contact id stands in"),
    "25": (2, {"karl": set()}, "registration init: it has no bindings"),
    "26": (2, {"erin": set(), "frank": set()}, "full v1 with no contacts ends everything lab-erin told"),
    "27": (2, {"leo": set()}, "active with expires 0: already lapsed"),
    "28": (1, {"mike": {6111}}, "5 s binding"),
    "29": (1, {"frank": {6041}}, "first document of lab-frank, partial: applied, gap reported"),
    "30": (1, {"erin": {6031}}, "v2: e1 registered again with a new Call-ID"),
    "31": (1, {"erin": {6031}}, "v0 is below v2: stale, discarded (e2 never added)"),
    "32": (1, {"nina": {6121}}, "final document applied; the subscription ends (noresource)"),
    "33": (1, {"olga": {6131}}, "user=phone dropped from the AoR"),
    "34": (1, {"+15551230001": {6141}}, "tel AoR keyed by its number"),
    "35": (1, {"carol": {5091, 6151}}, "NOTIFY binding joins the local registration"),
    "36": (-1, {"pat": set()}, "400: event 'bogus' is not an RFC 3680 event"),
    "37": (-1, {}, "400: registration without aor"),
    "38": (-1, {"quinn": set()}, "400: reginfo outside its namespace"),
    "39": (1, {"rita": {6191}}, "a namespace prefix is fine XML"),
    "40": (1, {"sam": {6201}}, "refreshed for an unknown binding: learned as registered"),
    "41": (1, {"tina": {6211}}, "display name and unknown-params kept as fields"),
    "42": (-1, {"uma": set()}, "400: contact without id"),
    "43": (-1, {"vic": set()}, "400: unknown-param without name"),
}


def first_aor_user(case) -> str:
    match = re.search(rb'aor="([^"]+)"', case.path.read_bytes())
    return aor_key(match.group(1).decode()) if match else "none"


@pytest.fixture
def lab_clock(monkeypatch):
    clock = type("LabClock", (), {"now": 0.0})()
    monkeypatch.setattr(SystemClock, "now", lambda self: clock.now)
    return clock


def live_ports(store: str) -> dict[str, set[int]]:
    out = CliRunner().invoke(cli, ["query", "--json", "--store", store])
    ports: dict[str, set[int]] = {}
    for binding in json.loads(out.stdout):
        port = int(re.search(r":(\d+)", binding["contact"].split("@")[-1]).group(1))
        ports.setdefault(aor_key(binding["aor"]), set()).add(port)
    return ports


def test_every_case_gets_its_rfc3680_outcome(tmp_path, lab_clock):
    assert len(RFC_OUTCOMES) == len(CASES) == 43
    store = f"sqlite:///{tmp_path / 'rfc-0.db'}"
    for case in CASES:
        if case.pre == "restart":
            store = f"sqlite:///{tmp_path / f'rfc-{case.id}.db'}"
        if case.pre == "register:carol":
            lab_clock.now = carol_register_time()
            register_carol(store, lab_clock.now)
        lab_clock.now = case.sent_at
        result = CliRunner().invoke(cli, ["handle-notify", str(case.path), "--mode", "rfc",
                                          "--subscription", f"lab-{first_aor_user(case)}",
                                          "--store", store])
        code, expected_live, why = RFC_OUTCOMES[case.id]
        assert result.stdout.strip() == str(code), f"{case.stem} ({why}): {result.stderr}"
        assert result.exit_code == (1 if code == -1 else 0)
        live = live_ports(store)
        for aor, ports in expected_live.items():
            assert live.get(aor, set()) == ports, f"{case.stem} ({why})"


def test_stale_and_gap_notes_are_printed(tmp_path, lab_clock):
    store = f"sqlite:///{tmp_path / 'notes.db'}"
    notes = {}
    for case in CASES:
        if case.id in ("17", "26", "29", "30", "31"):
            lab_clock.now = case.sent_at
            result = CliRunner().invoke(cli, ["handle-notify", str(case.path), "--store", store,
                                              "--subscription", f"lab-{first_aor_user(case)}"])
            notes[case.id] = result.stderr
    assert "stale or duplicate document discarded" in notes["31"]
    assert "version gap" in notes["29"] and notes["30"] == ""
