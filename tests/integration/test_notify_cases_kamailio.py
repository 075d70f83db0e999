"""`handle-notify --mode kamailio` replays the 43 lab cases with Kamailio 5.6.3's results.

The cases run in order on one store, on the lab's clock, exactly as the lab sent them (a
local REGISTER before case 35, a fresh registrar before 42 and 43). After each case the
return code must be Kamailio's, and the location table must hold the same live bindings
(AoR, contact, Call-ID, CSeq, remaining lifetime within 2 s), except for the documented
defects Kamailio has and we fix, each with its own test below:
- P11 (case 29): a stale CSeq made Kamailio store a duplicate binding; we keep one.
- P3 (cases 33, 35): Kamailio keys NOTIFY AoRs as `user@host;params`, apart from `user`
  records of local REGISTERs; we key both like the registrar. Compared by user part.
- P12 (cases 04, 41): Kamailio glues unknown-params onto the contact URI; we keep them as
  fields. Compared without the glued parameters.
- P4/P5 (cases 42, 43): Kamailio crashed; we answer -1 and keep running.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from domain import ContactUpdate, RegisterRequest
from infrastructure.cli import cli
from infrastructure.clock import SystemClock
from infrastructure.commands import Register
from tests.integration.notify_cases import (
    TABLES,
    Case,
    Row,
    aor_key,
    carol_register_time,
    cases,
    kamailio_rows,
    without_stale_duplicates,
)
from tests.support import open_test_service

CASES = cases()


class LabClock:
    def __init__(self) -> None:
        self.now = 0.0


@pytest.fixture
def lab_clock(monkeypatch) -> LabClock:
    clock = LabClock()
    monkeypatch.setattr(SystemClock, "now", lambda self: clock.now)
    return clock


def run_case(case: Case, store_url: str, mode: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, ["handle-notify", str(case.path), "--mode", mode, "--store", store_url])
    assert result.exit_code == (1 if result.stdout.strip() == "-1" else 0), result.output
    assert "Traceback" not in result.stderr
    return int(result.stdout.strip()), result.stderr


def our_rows(store_url: str, now: float) -> list[Row]:
    out = CliRunner().invoke(cli, ["query", "--json", "--store", store_url])
    return [Row(aor_key(b["aor"]), b["contact"], b["callid"], b["cseq"], b["expires"] - now)
            for b in json.loads(out.stdout)]


def register_carol(store_url: str, now: float) -> None:
    service = open_test_service(store_url)
    try:
        request = RegisterRequest("lab-carol-dev1@127.0.0.1", 1, (
            ContactUpdate("sip:carol@127.0.0.1:5091;transport=udp", 3600),),
            user_agent="sipp-lab-ua carol")
        service.app.run(Register("sip:carol@example.com", request), now)
        service.catch_up()
    finally:
        service.close()


def comparable(rows: list[Row]) -> dict:
    return {(r.aor, r.contact, r.callid, r.cseq): r.remaining for r in rows}


def assert_same_table(ours: list[Row], theirs: list[Row], case: Case) -> None:
    mine, kam = comparable(ours), comparable(without_stale_duplicates(theirs))
    assert mine.keys() == kam.keys(), f"case {case.stem}"
    for key, remaining in mine.items():
        assert abs(remaining - kam[key]) <= 2.0, f"case {case.stem}: {key} {remaining} vs {kam[key]}"


def test_the_43_cases_give_kamailios_results(tmp_path, lab_clock):
    store = f"sqlite:///{tmp_path / 'replay-0.db'}"
    for case in CASES:
        if case.pre == "restart":
            store = f"sqlite:///{tmp_path / f'replay-{case.id}.db'}"
        if case.pre == "register:carol":
            lab_clock.now = carol_register_time()
            register_carol(store, lab_clock.now)
        lab_clock.now = case.sent_at
        code, stderr = run_case(case, store, "kamailio")
        assert code == case.rc, f"case {case.stem}: {stderr}"
        expected = kamailio_rows(case.stem, "before" if case.crashed else "after")
        assert_same_table(our_rows(store, lab_clock.now), expected, case)


def replay_until(case_id: str, store: str, clock: LabClock) -> Case:
    for case in CASES:
        if case.pre == "register:carol":
            clock.now = carol_register_time()
            register_carol(store, clock.now)
        clock.now = case.sent_at
        run_case(case, store, "kamailio")
        if case.id == case_id:
            return case
    raise AssertionError(case_id)


def bindings(store: str, aor: str) -> list[dict]:
    out = CliRunner().invoke(cli, ["query", "--json", "--aor", aor, "--store", store])
    return json.loads(out.stdout)


def test_case_29_a_stale_cseq_does_not_duplicate_the_binding(sqlite_url, lab_clock):
    replay_until("29", sqlite_url, lab_clock)
    kamailio = [r for r in kamailio_rows("29-stale-cseq") if r.contact == "sip:frank@127.0.0.1:6041"]
    assert sorted(r.cseq for r in kamailio) == [2, 5]  # Kamailio: two bindings, one URI
    ours = [b for b in bindings(sqlite_url, "frank@example.com") if b["contact"] == "sip:frank@127.0.0.1:6041"]
    assert [(b["callid"], b["cseq"]) for b in ours] == [("frank-dev1@lab", 5)]


def test_case_35_a_notify_lands_on_the_locally_registered_aor(sqlite_url, lab_clock):
    replay_until("35", sqlite_url, lab_clock)
    dump = (TABLES / "35-aor-registered-locally.after.txt").read_text().splitlines()
    kamailio_aors = {line.strip() for line in dump if line.strip().startswith("AoR:")}
    assert {"AoR: carol", "AoR: carol@example.com"} <= kamailio_aors  # two records in Kamailio
    ours = bindings(sqlite_url, "carol@example.com")
    assert {(b["aor"], b["contact"], b["origin"]) for b in ours} == {
        ("sip:carol@example.com", "sip:carol@127.0.0.1:5091;transport=udp", "register"),
        ("sip:carol@example.com", "sip:carol@127.0.0.1:6151", "notify")}


@pytest.mark.parametrize("use_domain, expected_aors", [
    (False, {"sip:dave@other.example.net"}),
    (True, {"sip:dave@other.example.net"}),
])
def test_foreign_domains_are_keyed_like_local_registrations(tmp_path, lab_clock, monkeypatch,
                                                            use_domain, expected_aors):
    monkeypatch.setenv("PUA_REGINFO_USRLOC_USE_DOMAIN", "true" if use_domain else "false")
    store = f"sqlite:///{tmp_path / 'ud.db'}"
    case = next(c for c in CASES if c.id == "16")
    lab_clock.now = case.sent_at
    assert run_case(case, store, "kamailio")[0] == 1  # Kamailio hangs with use_domain=1
    assert {b["aor"] for b in bindings(store, "sip:dave@other.example.net")} == expected_aors
    other = "sip:dave@example.com"
    assert (bindings(store, other) != []) is (not use_domain)  # one record per user without domain


def test_cases_04_and_41_keep_contact_parameters_as_fields(sqlite_url, lab_clock):
    replay_until("41", sqlite_url, lab_clock)
    service = open_test_service(sqlite_url)
    try:
        [tina] = [e.binding for e in service.app.history("tina@example.com") if hasattr(e, "binding")]
        c2 = [e.binding for e in service.app.history("bob@example.com")
              if hasattr(e, "binding") and "6002" in e.binding.contact][0]
    finally:
        service.close()
    assert tina.contact == "sip:tina@127.0.0.1:6211;transport=tcp"
    assert tina.params == (("+g.3gpp.icsi-ref", '"urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel"'),
                           ("expires", "600000"))
    assert tina.display_name == "Tina & Co"
    assert c2.contact == "sip:bob@127.0.0.1:6002;transport=tcp"
    assert (c2.instance, c2.reg_id, c2.params) == (
        '"<urn:uuid:00000000-0000-1000-8000-00000000b0b2>"', 1, (("audio", None),))


@pytest.mark.parametrize("case_id, reason", [
    ("42", "contact without callid and id"),
    ("43", "unknown-param without a name"),
])
def test_where_kamailio_crashed_we_answer_minus_one_and_change_nothing(sqlite_url, lab_clock,
                                                                       case_id, reason):
    case = next(c for c in CASES if c.id == case_id)
    lab_clock.now = case.sent_at
    code, stderr = run_case(case, sqlite_url, "kamailio")
    assert code == -1 and reason in stderr
    assert bindings(sqlite_url, "sip:uma@example.com") == bindings(sqlite_url, "sip:vic@example.com") == []


def test_case_01_q_and_the_reported_fields_are_kept_not_zeroed(sqlite_url, lab_clock):
    replay_until("01", sqlite_url, lab_clock)
    kamailio_dump = (TABLES / "01-new-contact.after.txt").read_text()
    assert "Q: 0\n" in kamailio_dump and "User-Agent: n/a" in kamailio_dump  # what 5.6 keeps
    [binding] = bindings(sqlite_url, "bob@example.com")
    assert (binding["q"], binding["callid"], binding["cseq"], binding["origin"]) == (
        0.8, "bob-dev1@lab", 1, "notify")
