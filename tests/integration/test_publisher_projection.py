"""The publisher projection over a real store, on SQLite and PostgreSQL (RFC 3680, RFC 3903)."""

from __future__ import annotations

import random
import pytest
from eventsourcing.persistence import IntegrityError, Tracking

from domain import ContactEvent, RegisterRequest
from domain.reginfo import ContactInfo, ReginfoDocument, RegistrationInfo
from infrastructure.bootstrap import open_service
from infrastructure.commands import ApplyNotify, NotifyContext, PutOnProbation
from sip_gateway.server.notify_modes import notify_mode
from infrastructure.settings import load_settings
from projections.publisher import (
    LOCAL_ORIGINS, ComposedDocument, Composer, PublisherProjection, PublisherView,
    group_messages, stored_history,
)
from sip_gateway.reginfo import build_reginfo, parse_reginfo, validate_reginfo
from infrastructure.commands import Register
from tests.support import FakeClock, open_test_service, register

ALICE, BOB = "sip:alice@example.com", "sip:bob@example.com"
C1, C2, C3 = "sip:alice@10.0.0.1", "sip:alice@10.0.0.2", "sip:alice@10.0.0.3"


class Publisher:
    """A service with the publisher wired to its store, restartable like a process."""

    def __init__(self, store_url: str) -> None:
        self.clock = FakeClock()
        self.service = open_test_service(store_url, self.clock)
        self.app = self.service.app
        self.view = PublisherView(self.app.factory.datastore)
        self.view.create_table()
        self.projection = self.restart()

    def restart(self, node: str | None = None) -> PublisherProjection:
        composer = Composer("example.com", stored_history(self.app), build_reginfo)
        self.projection = PublisherProjection(self.view, node or self.app.node, self.app.name,
                                              composer)
        return self.projection

    def register(self, aor: str, request: RegisterRequest, advance: float = 1.0) -> None:
        self.clock.advance(advance)
        self.app.run(Register(aor, request), self.clock.now())

    def documents(self, node: str | None = None) -> list:
        self.projection.catch_up(self.app)
        return self.view.pending(node or self.app.node)


@pytest.fixture
def publisher(store_url):
    publisher = Publisher(store_url)
    publisher.projection.catch_up(publisher.app)  # first start: position at the log's end
    yield publisher
    publisher.service.close()


def summary(body: bytes) -> tuple[int, str, list[tuple[str, str, str, int]]]:
    validate_reginfo(body)
    document = parse_reginfo(body)
    [registration] = document.registrations
    return (document.version, registration.state,
            [(c.uri, c.state, c.event, c.expires) for c in registration.contacts])


def learned_document(version: int, aor: str, *contacts: tuple[str, int]) -> ReginfoDocument:
    infos = tuple(ContactInfo(uri, id=f"id-{uri}", state="active", event="registered",
                              expires=expires, callid=f"n-{uri}", cseq=version + 1)
                  for uri, expires in contacts)
    return ReginfoDocument(version, "full", (RegistrationInfo(aor, "r", "active", infos),))


def notify(publisher: Publisher, document: ReginfoDocument, subscription: str = "s1") -> None:
    publisher.clock.advance(1)
    context = NotifyContext(notify_mode("rfc", accept_unsolicited=True), subscription)
    result = publisher.app.run(ApplyNotify(document, context), publisher.clock.now())
    assert result.code in (1, 2), result.reason


# The REGISTER story ------------------------------------------------------------------------

def test_each_register_change_and_the_expiry_give_one_document_in_order(publisher):
    publisher.register(ALICE, register("c1", 1, (C1, 3600)))
    publisher.register(ALICE, register("c1", 2, (C1, 3600)))
    publisher.register(ALICE, register("c2", 1, (C2, 1800)))
    publisher.register(ALICE, register("c1", 3, (C1, 0)))
    publisher.register(ALICE, RegisterRequest("c2", 2, wildcard=True))
    publisher.register(ALICE, register("c3", 1, (C3, 30)))
    publisher.clock.advance(31)
    assert publisher.service.expire_due() == 1
    documents = publisher.documents()
    assert [summary(d.body) for d in documents] == [
        (0, "active", [(C1, "active", "registered", 3600)]),
        (1, "active", [(C1, "active", "refreshed", 3600)]),
        (2, "active", [(C1, "active", "refreshed", 3599), (C2, "active", "registered", 1800)]),
        (3, "active", [(C2, "active", "registered", 1799), (C1, "terminated", "unregistered", 0)]),
        (4, "terminated", [(C2, "terminated", "unregistered", 0)]),
        (5, "active", [(C3, "active", "registered", 30)]),
        (6, "terminated", [(C3, "terminated", "expired", 0)]),
    ]
    assert [d.version for d in documents] == list(range(7))
    assert [d.final for d in documents] == [False] * 4 + [True, False, True]
    assert {d.resource for d in documents} == {ALICE}
    [row] = publisher.view.publications()
    assert (row.resource, row.version, row.pending, row.etag) == (ALICE, 6, 7, None)


def test_one_register_is_one_document_whatever_it_touches(publisher):
    publisher.register(ALICE, register("c1", 1, (C1, 60), (C2, 60), (C3, 60)))
    publisher.register(ALICE, RegisterRequest("c1", 2, wildcard=True))
    publisher.register(ALICE, register("c1", 3, (C1, 60)))
    publisher.register(ALICE, register("c2", 1, (C2, 600)), advance=100)  # C1 lapsed meanwhile
    states = [summary(d.body)[1:] for d in publisher.documents()]
    assert [[c[:3] for c in contacts] for _, contacts in states] == [
        [(C1, "active", "registered"), (C2, "active", "registered"), (C3, "active", "registered")],
        [(C1, "terminated", "unregistered"), (C2, "terminated", "unregistered"),
         (C3, "terminated", "unregistered")],
        [(C1, "active", "registered")],
        [(C2, "active", "registered"), (C1, "terminated", "expired")],
    ]


def test_notify_learned_contacts_and_their_expiry_publish_nothing(publisher):
    notify(publisher, learned_document(0, ALICE, (C2, 30)))
    publisher.clock.advance(31)
    assert publisher.service.expire_due() == 1
    assert publisher.documents() == []
    publisher.register(ALICE, register("c1", 1, (C1, 60)))
    [document] = publisher.documents()
    assert summary(document.body)[2] == [(C1, "active", "registered", 60)]


def test_an_admin_action_publishes(publisher):
    publisher.register(ALICE, register("c1", 1, (C1, 60)))
    publisher.clock.advance(1)
    publisher.app.run(PutOnProbation(ALICE, C1, 20, "admin probation"), publisher.clock.now())
    documents = publisher.documents()
    assert [summary(d.body)[2][0][2] for d in documents] == ["registered", "probation"]
    assert documents[-1].final


@pytest.mark.parametrize("seed", [3680, 3903])
def test_random_interleavings_publish_once_per_local_change(publisher, seed):
    rng, expected = random.Random(seed), []
    versions = {ALICE: 0, BOB: 0}
    for step in range(150):
        aor = rng.choice([ALICE, BOB])
        before = {a: len(_history(publisher, a)) for a in versions}
        action = rng.random()
        if action < 0.45:
            contacts = [(u, rng.choice([0, 5, 30])) for u in rng.sample([C1, C2], rng.randint(1, 2))]
            publisher.register(aor, register(f"c{step}", 1, *contacts), rng.choice([1, 2, 7]))
        elif action < 0.55:
            publisher.register(aor, RegisterRequest(f"c{step}", 1, wildcard=True))
        elif action < 0.85:
            learned = rng.sample(["sip:n@10.0.1.1", "sip:n@10.0.1.2"], rng.randint(0, 2))
            notify(publisher, learned_document(versions[aor], aor,
                                               *[(u, rng.choice([5, 30])) for u in learned]),
                   subscription=f"s-{aor}")
            versions[aor] += 1
        else:
            publisher.clock.advance(rng.choice([3, 10]))
            publisher.service.expire_due()
        for a in versions:
            new = _history(publisher, a)[before[a]:]
            if any(isinstance(e, ContactEvent) and e.origin in LOCAL_ORIGINS
                   and e.binding.is_local for e in new):
                expected.append((a, _local_contacts(publisher, a)))
        if rng.random() < 0.2:
            publisher.restart()
        if rng.random() < 0.3:
            publisher.projection.catch_up(publisher.app, batch_size=rng.choice([2, 5, 1000]))
    documents = publisher.documents()
    assert len(documents) == len(expected) > 40
    for resource in (ALICE, BOB):  # one sweep expires both AoRs in an unspecified order
        mine = [d for d in documents if d.resource == resource]
        assert [_active(d.body) for d in mine] == [c for a, c in expected if a == resource]
        assert [d.version for d in mine] == list(range(len(mine)))


def _history(publisher: Publisher, aor: str) -> list:
    return list(publisher.app.repository.event_store.get(publisher.app.identify(aor).id))


def _local_contacts(publisher: Publisher, aor: str) -> set[str]:
    aggregate = publisher.app.repository.get(publisher.app.identify(aor).id)
    return {b.contact for b in aggregate.bindings.values() if b.is_local}


def _active(body: bytes) -> set[str]:
    return {uri for uri, state, _, _ in summary(body)[2] if state == "active"}


# Nodes, first start, restarts and batches --------------------------------------------------

def test_another_nodes_changes_are_published_by_that_node_only(publisher, store_url):
    settings = load_settings(overrides={"store": {"url": store_url}, "node": {"id": "node-b"}})
    other = open_service(settings, clock=publisher.clock)
    try:
        theirs = publisher.restart(node="node-b")
        theirs.catch_up(publisher.app)
        other.app.run(Register(BOB, register("b1", 1, ("sip:bob@10.0.0.9", 60))), publisher.clock.now())
        publisher.restart()
        assert publisher.documents() == []
        theirs.catch_up(publisher.app)
        [document] = publisher.view.pending("node-b")
        assert (document.node, document.resource, document.version) == ("node-b", BOB, 0)
    finally:
        other.close()


def test_the_first_start_does_not_publish_history(store_url):
    publisher = Publisher(store_url)
    try:
        publisher.register(ALICE, register("c1", 1, (C1, 60)))
        assert publisher.projection.catch_up(publisher.app) == 0
        assert publisher.view.pending(publisher.app.node) == []
        end = publisher.app.recorder.max_notification_id()
        assert publisher.view.max_tracking_id(publisher.projection.name) == end
        publisher.register(ALICE, register("c1", 2, (C1, 60)))
        [document] = publisher.documents()
        assert summary(document.body)[:2] == (0, "active") and document.version == 0
    finally:
        publisher.service.close()


def test_a_restart_continues_without_duplicates_and_rebuilds_the_same_state(publisher):
    publisher.register(ALICE, register("c1", 1, (C1, 600)))
    notify(publisher, learned_document(0, ALICE, ("sip:n@10.0.1.1", 600)))
    publisher.register(ALICE, register("c2", 1, (C2, 600)))
    assert len(publisher.documents()) == 2
    warm = publisher.projection.composer
    publisher.register(ALICE, register("c1", 2, (C1, 0)))
    publisher.restart()
    documents = publisher.documents()
    assert [d.version for d in documents] == [0, 1, 2]
    start = publisher.view.max_tracking_id(publisher.projection.name) - 1
    notifications = publisher.app.recorder.select_notifications(start, limit=100)
    [*_, message] = group_messages([publisher.app.mapper.to_domain_event(n) for n in notifications],
                                   [n.id for n in notifications])
    assert warm.compose(message, 2).body == documents[-1].body
    assert summary(documents[-1].body)[2] == [(C2, "active", "registered", 599),
                                              (C1, "terminated", "unregistered", 0)]


def test_a_batch_boundary_inside_a_message_still_gives_one_document(publisher):
    publisher.register(ALICE, register("c1", 1, (C1, 60), (C2, 60), (C3, 60)))  # 5 events
    publisher.register(BOB, register("b1", 1, ("sip:bob@10.0.0.9", 60)))  # 3 events
    publisher.register(ALICE, register("c1", 2, (C1, 60)), advance=0)
    assert publisher.projection.catch_up(publisher.app, batch_size=2) == 9
    documents = publisher.view.pending(publisher.app.node)
    assert [(d.resource, len(summary(d.body)[2])) for d in documents] == [
        (ALICE, 3), (BOB, 1), (ALICE, 3)]


def test_a_racing_runner_continues_from_the_winners_position(publisher):
    stale = publisher.view.max_tracking_id(publisher.projection.name)
    publisher.register(ALICE, register("c1", 1, (C1, 60)))
    publisher.documents()
    loser = publisher.restart()
    loser.start = lambda app: stale  # it read its position before the winner wrote
    assert loser.catch_up(publisher.app) == 0
    assert len(publisher.view.pending(publisher.app.node)) == 1


# The view ----------------------------------------------------------------------------------

def composed(resource: str, version: int, final: bool = False) -> ComposedDocument:
    return ComposedDocument("n1", resource, "aor-1", version, b"<body/>", 60, final, 1000.0, 9)


def test_the_outbox_acknowledges_forgets_fails_and_discards(publisher):
    view = publisher.view
    view.apply([composed(ALICE, 0), composed(ALICE, 1), composed(BOB, 0, final=True)],
               Tracking("app@n1", 9))
    pending = view.pending("n1")
    assert [(d.resource, d.version, d.final, d.body) for d in pending] == [
        (ALICE, 0, False, b"<body/>"), (ALICE, 1, False, b"<body/>"), (BOB, 0, True, b"<body/>")]
    assert view.pending("n2") == [] and view.versions("n1", [ALICE, BOB, C1]) == {ALICE: 1, BOB: 0}
    view.record_failure("n1", ALICE, "408 timeout", 2, 1001.0)
    view.discard([pending[0].id])
    view.acknowledge("n1", BOB, [pending[2].id], "etag-b", 4600.0, 1002.0)
    rows = {r.resource: r for r in view.publications("n1")}
    assert (rows[ALICE].failures, rows[ALICE].last_error, rows[ALICE].pending) == (2, "408 timeout", 1)
    assert (rows[BOB].etag, rows[BOB].expires_at, rows[BOB].pending) == ("etag-b", 4600.0, 0)
    view.acknowledge("n1", ALICE, [pending[1].id], "etag-a", 4700.0, 1003.0)
    view.forget_etag("n1", BOB, 1004.0)
    rows = {r.resource: r for r in view.publications()}
    assert (rows[ALICE].etag, rows[ALICE].failures, rows[ALICE].last_error) == ("etag-a", 0, None)
    assert (rows[BOB].etag, rows[BOB].expires_at) == (None, None)
    assert view.pending("n1") == []


def test_a_replayed_batch_or_a_version_gap_is_refused_and_changes_nothing(publisher):
    view = publisher.view
    view.apply([composed(ALICE, 0)], Tracking("app@n1", 5))
    for position in (5, 4):
        with pytest.raises(IntegrityError):
            view.apply([composed(ALICE, 1)], Tracking("app@n1", position))
    with pytest.raises(IntegrityError):
        view.apply([composed(ALICE, 3)], Tracking("app@n1", 6))
    assert [d.version for d in view.pending("n1")] == [0]
    assert view.max_tracking_id("app@n1") == 5
    assert view.max_tracking_id("app@n2") is None
