"""One contract for the location view, run against SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import IntegrityError, Tracking

from projections import LocationRow, LocationView
from projections.usrloc.view import DUE
from tests.support import open_test_service


def row(aor_id: str, key: str, contact: str, expires: float, q: float | None = None) -> LocationRow:
    return LocationRow(
        aor_id=aor_id, binding_key=key, aor=f"sip:{aor_id}@example.com", username=aor_id,
        domain="example.com", contact=contact, received="udp:192.0.2.1:5060",
        path='["<sip:edge.example.com;lr>"]', expires=expires, q=q, callid="c1", cseq=1,
        last_modified=1000.0, flags=0, cflags=0, user_agent="phone/1.0", socket=None,
        methods="INVITE,MESSAGE", instance=None, reg_id=None, ruid=f"r-{aor_id}-{key}",
        state="active", event="registered", origin="register",
    )


@pytest.fixture
def view(store_url) -> LocationView:
    service = open_test_service(store_url)
    yield service.view
    service.close()


def test_a_batch_is_written_with_its_tracking_position(view):
    assert view.max_tracking_id("app") is None
    view.apply([row("a", "k1", "sip:a@h1", 2000.0)], [], Tracking("app", 3), 0)
    assert view.max_tracking_id("app") == 3
    assert [r.contact for r in view.rows()] == ["sip:a@h1"]
    assert view.rows()[0] == row("a", "k1", "sip:a@h1", 2000.0)


def test_a_replayed_or_older_batch_is_refused_and_changes_nothing(view):
    view.apply([row("a", "k1", "sip:a@h1", 2000.0)], [], Tracking("app", 5), 0)
    for position, after in ((5, 0), (4, 0), (5, 3)):
        with pytest.raises(IntegrityError):
            view.apply([row("b", "k1", "sip:b@h1", 2000.0)], [("a", "k1")],
                       Tracking("app", position), after)
    assert [r.aor_id for r in view.rows()] == ["a"]
    assert view.max_tracking_id("app") == 5


def test_a_batch_read_after_another_position_is_refused_even_when_it_moves_forward(view):
    """A runner that read its batch before the view moved (another runner, or a rebuild
    swapping a new view in) must read again: its batch does not follow the view."""
    view.apply([row("a", "k1", "sip:a@h1", 2000.0)], [], Tracking("app", 5), 0)
    with pytest.raises(IntegrityError):
        view.apply([row("b", "k1", "sip:b@h1", 2000.0)], [], Tracking("app", 9), 2)
    view.apply([row("b", "k1", "sip:b@h1", 2000.0)], [], Tracking("app", 9), 5)
    assert [r.aor_id for r in view.rows()] == ["a", "b"]
    assert view.max_tracking_id("app") == 9


def test_upserts_replace_rows_and_deletes_remove_them(view):
    view.apply([row("a", "k1", "sip:a@h1", 2000.0), row("a", "k2", "sip:a@h2", 2000.0)], [],
               Tracking("app", 1), 0)
    view.apply([row("a", "k1", "sip:a@h1-new", 3000.0)], [("a", "k2")], Tracking("app", 2), 1)
    assert [(r.contact, r.expires) for r in view.rows()] == [("sip:a@h1-new", 3000.0)]


def test_rows_filter_by_aor_and_validity_and_sort_by_q(view):
    view.apply([row("a", "k1", "sip:a@h1", 2000.0, q=0.2), row("a", "k2", "sip:a@h2", 900.0),
                row("a", "k3", "sip:a@h3", 2000.0, q=0.9), row("b", "k1", "sip:b@h1", 2000.0)],
               [], Tracking("app", 1), 0)
    assert [r.contact for r in view.rows(aor_id="a")] == [
        "sip:a@h2", "sip:a@h3", "sip:a@h1"]
    assert [r.contact for r in view.rows(aor_id="a", valid_at=1000.0)] == [
        "sip:a@h3", "sip:a@h1"]
    assert view.due_aor_ids(1000.0) == ["a"]
    assert view.count() == 4


def test_a_view_built_beside_replaces_the_live_one_and_takes_its_position(view):
    view.apply([row("a", "k1", "sip:a@h1", 2000.0)], [], Tracking("app", 4), 0)
    for built_at in (6, 10):  # the second time over tables a first swap left behind
        built = view.beside()
        assert built.rows() == [] and view.count() == 1
        built.apply([row("b", "k1", "sip:b@h1", 2000.0)], [], Tracking("app", built_at), 0)
        assert view.swap_in(built, "app", behind_ok=False)
        assert [r.aor_id for r in view.rows()] == ["b"]
        assert view.max_tracking_id("app") == built_at
        assert view.due_aor_ids(3000.0) == ["b"]  # the expires index came along
        view.apply([row("a", "k1", "sip:a@h1", 2000.0)], [], Tracking("app", built_at + 1), built_at)
        view.apply([], [("b", "k1")], Tracking("app", built_at + 2), built_at + 1)


def test_a_view_built_behind_the_live_one_is_swapped_in_only_when_allowed(view):
    view.apply([row("a", "k1", "sip:a@h1", 2000.0)], [], Tracking("app", 9), 0)
    built = view.beside()
    built.apply([row("b", "k1", "sip:b@h1", 2000.0)], [], Tracking("app", 6), 0)
    assert not view.swap_in(built, "app", behind_ok=False)
    assert [r.aor_id for r in view.rows()] == ["a"] and view.max_tracking_id("app") == 9
    assert view.swap_in(built, "app", behind_ok=True)
    assert [r.aor_id for r in view.rows()] == ["b"] and view.max_tracking_id("app") == 6


def test_due_aors_are_each_named_once_and_read_by_the_expires_index(view):
    view.apply([row("a", "k1", "sip:a@h1", 1000.0), row("a", "k2", "sip:a@h2", 1500.0),
                row("b", "k1", "sip:b@h1", 3000.0), row("c", "k1", "sip:c@h1", 900.0)], [],
               Tracking("app", 1), 0)
    assert sorted(view.due_aor_ids(2000.0)) == ["a", "c"]
    with view.datastore.transaction(commit=False) as cursor:
        statement = DUE.format(location=view.location)
        if view.postgres:
            cursor.execute("SET enable_seqscan = off")  # a small table: ask for the index
            cursor.execute("EXPLAIN " + view._sql(statement), (2000.0,))
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + view._sql(statement), (2000.0,))
        plan = " ".join(str(value) for r in cursor.fetchall()
                        for value in (r.values() if isinstance(r, dict) else tuple(r)))
    # Not a walk of the whole table: a sweep runs up to ten times a second. With DISTINCT
    # in the statement SQLite scanned every row in primary-key order.
    assert "_expires" in plan, plan
