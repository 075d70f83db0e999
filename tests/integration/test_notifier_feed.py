"""The notifier's feed over a real store (SQLite and PostgreSQL): pictures of AoRs at
their latest version, and the changes of watched AoRs only, from what was committed or
from the log."""

from __future__ import annotations

from domain import normalize_aor
from infrastructure.commands import Register
from projections.notifier import AorPictures, watched_history
from projections.notifier.feed import NotifierFeed
from tests.support import register, run_at_next_second

ALICE, BOB = "sip:alice@example.com", "sip:bob@example.com"
C1, C2 = "sip:alice@10.0.0.1", "sip:alice@10.0.0.2"


def aor_id(aor: str) -> str:
    return str(normalize_aor(aor).id)


def feed_of(service) -> NotifierFeed:
    return NotifierFeed(service.app, AorPictures(watched_history(service.app)))


def contacts(held) -> dict:
    return {binding.contact: event for binding, event in held.values()}


def test_a_picture_is_the_aor_at_its_latest_version(service):
    feed = feed_of(service)
    empty = feed.picture(aor_id(ALICE))
    assert (empty.version, empty.everyone) == (0, {})
    run_at_next_second(service, Register("alice", register("a", 1, (C1, 600))))
    run_at_next_second(service, Register("alice", register("a", 2, (C1, 300), (C2, 600))))
    picture = feed.picture(aor_id(ALICE))
    assert picture.version >= 2
    assert contacts(picture.held(False)) == {C1: "refreshed", C2: "registered"}


def test_only_the_changes_of_watched_aors_are_handed_on(service):
    run_at_next_second(service, Register("alice", register("a", 1, (C1, 600))))
    feed = feed_of(service)  # as serve starts: from the log's end
    start = feed.picture(aor_id(ALICE)).version
    assert feed.catch_up() == []
    run_at_next_second(service, Register("bob", register("b", 1, ("sip:bob@10.0.0.3", 600))))
    run_at_next_second(service, Register("alice", register("a", 2, (C2, 600))))
    [change] = feed.catch_up()
    assert change.aor_id == aor_id(ALICE) and change.first == start + 1
    assert [b.contact for b in change.everyone.changed.values()] == [C2]
    assert contacts(change.picture) == {C1: "registered", C2: "registered"}
    feed.unwatch(aor_id(ALICE))
    run_at_next_second(service, Register("alice", register("a", 3, (C2, 0))))
    assert feed.catch_up() == []
    assert feed.position == service.app.recorder.max_notification_id()


def test_committed_events_that_follow_the_position_are_taken_as_they_are(service):
    feed = feed_of(service)
    feed.picture(aor_id(ALICE))
    position = feed.position
    run_at_next_second(service, Register("alice", register("a", 1, (C1, 600))))
    committed = [(n.id, service.app.mapper.to_domain_event(n))
                 for n in service.app.recorder.select_notifications(position + 1, limit=100)]
    [change] = feed.follow(committed)
    assert change.first == 1 and [b.contact for b in change.everyone.changed.values()] == [C1]
    assert feed.position == committed[-1][0]
    assert feed.follow([]) == []
