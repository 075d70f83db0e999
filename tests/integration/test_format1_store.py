"""A store written in the previous event format (format 1) still works, and takes format 2.

tests/fixtures/format1/events.jsonl holds the events of the history of
test_rebuild_rows.py (every contact event from every origin) plus two refreshes, as the
code before format 2 stored them: eventsourcing's JSONTranscoder, whole bindings. Its
shown.json is what that code showed of them: `query --json` rows and `audit --json` of
each AoR. Loaded into a new store, the views, the audit and a rebuild give exactly that;
REGISTERs on top are stored in format 2 (a refresh as what changed) and read with the rest;
a prune of part of it keeps the same answers from its horizon on.
"""

from __future__ import annotations

import pytest

from infrastructure.cli.render import audit_entries
from infrastructure.commands import Register
from infrastructure.event_format import PREFIX
from projections.stored_log import StoredLog
from projections.usrloc.stored_rows import StoredRows
from tests.integration.format1 import SHOWN, load_format1
from tests.integration.test_rebuild_rows import ALICE, outbound, register
from tests.support import FakeClock, open_test_service


@pytest.fixture
def service(store_url):
    clock = FakeClock(SHOWN["now"])
    service = open_test_service(store_url, clock)
    service.clock = clock
    load_format1(service)
    service.catch_up()
    yield service
    service.close()


def query(service) -> list[dict]:
    return [row.to_json() for row in service.view.rows()]


def test_a_format1_store_shows_what_the_previous_code_showed(service):
    assert query(service) == SHOWN["query"]
    for aor, entries in SHOWN["audit"].items():
        assert audit_entries(service.app.history(aor)) == entries
    service.rebuild()
    assert query(service) == SHOWN["query"]


def test_a_format1_store_reads_directly_in_a_rebuild(service, monkeypatch):
    rows = StoredRows(service.app.mapper)
    assert rows.direct and rows.compact
    monkeypatch.setattr(rows, "_event", None)  # no event needs the mapper
    changes: dict = {}
    rows.fold(StoredLog(service.app.recorder).read(1, 10_000), changes)
    upserts, deletes, refreshes = rows.split(changes)
    assert sorted(upserts) == sorted(row.as_tuple() for row in service.view.rows())
    assert refreshes == []


def test_format2_events_follow_format1_ones_in_one_history(service):
    clock = service.clock
    service.app.run(Register(ALICE, register("a", 5, outbound("sip:alice@10.0.0.1:5062",
                                                              1800))), clock.now())
    service.catch_up()
    last = StoredLog(service.app.recorder).read(1, 10_000)[-1]
    assert last[3] == "pua_reginfo:ContactRefreshed" and last[4].startswith(PREFIX)
    assert b'"b"' not in last[4]  # a refresh: only what changed

    row, = [r for r in query(service) if r["aor"] == ALICE]
    assert (row["cseq"], row["expires"], row["event"]) == (5, int(clock.now()) + 1800,
                                                           "refreshed")
    assert {k: v for k, v in row.items() if k not in ("cseq", "expires", "last_modified")} \
        == {k: v for k, v in SHOWN["query"][0].items()
            if k not in ("cseq", "expires", "last_modified")}
    entries = audit_entries(service.app.history(ALICE))
    assert entries[:-1] == SHOWN["audit"][ALICE]
    assert entries[-1]["contact"] == "sip:alice@10.0.0.1:5062"
    live = query(service)
    service.rebuild()
    assert query(service) == live


def test_a_format1_store_is_pruned_and_answers_alike_from_the_horizon_on(service):
    clock = service.clock
    before = SHOWN["now"] - 45  # after Alice's refresh with CSeq 3, before the one with 4
    clock.advance(3600)
    report = service.prune(before)
    assert (report.kept, report.removed) == (3, 0)  # each AoR still has a binding
    assert query(service) == SHOWN["query"]
    progress: list[int] = []
    applied = service.rebuild(progress.append)
    assert query(service) == SHOWN["query"]
    newest = service.app.recorder.max_notification_id()
    assert sum(progress) == newest > applied  # the bar ends full over the pruned gaps

    for aor, entries in SHOWN["audit"].items():
        retained = service.app.retained(aor)
        assert retained.seed is not None and retained.seed.horizon == before
        kept = [e for e in entries if e["version"] > retained.seed.version]
        assert [e["version"] for e in kept] == [e.originator_version for e in retained.events]
        assert audit_entries(retained.events, retained.seed.bindings) == kept
    assert len(service.app.retained(ALICE).events) == 1  # the refresh with CSeq 4

    service.app.run(Register(ALICE, register("a", 5, outbound("sip:alice@10.0.0.1:5062",
                                                              1800))), clock.now())
    service.catch_up()
    row, = [r for r in query(service) if r["aor"] == ALICE]
    assert (row["cseq"], row["expires"]) == (5, int(clock.now()) + 1800)
    live = query(service)
    service.rebuild()
    assert query(service) == live
