"""Retention: `prune` keeps every answer the store gives from its horizon on, on SQLite and
PostgreSQL. Two stores are given the same history, one is pruned, and everything read from
both from then on must be the same: the usrloc view, a rebuild, `query`, `audit --at`,
and the next PUBLISH bodies."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from eventsourcing.application import AggregateNotFoundError

from domain.reginfo import ContactInfo, ReginfoDocument, RegistrationInfo
from infrastructure.cli import cli
from infrastructure.commands import (
    ApplyNotify, NotifyContext, PutOnProbation, Register, ShortenContact,
)
from projections import retained
from projections.notifier import AorPictures, watched_history
from projections.publisher import Composer, PublisherProjection, PublisherView, stored_history
from projections.usrloc import rebuild
from sip_gateway.reginfo import build_reginfo
from sip_gateway.server.notify_modes import notify_mode
from tests.support import FakeClock, open_test_service, register

DAY = 86400
T0 = float(int(time.time()) - 10 * DAY)  # the history starts ten days ago (real time)
TIME = T0 + DAY  # the prune's horizon
LONG = 20 * DAY  # bindings still live at the real now, so that `query` shows them
ALICE, BOB, CAROL, DAVE = ("sip:alice@example.com", "sip:bob@example.com",
                           "sip:carol@example.com", "sip:dave@example.com")
ERIN, FRANK, GINA, HARRY = ("sip:erin@example.com", "sip:frank@example.com",
                            "sip:gina@example.com", "sip:harry@example.com")
EVERYONE = (ALICE, BOB, CAROL, DAVE, ERIN, FRANK, GINA, HARRY)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_urls(request, tmp_path) -> tuple[str, str]:
    """Two empty stores of one kind: the one to prune, and its unpruned twin."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'pruned.db'}", f"sqlite:///{tmp_path / 'whole.db'}"
    databases = request.getfixturevalue("postgres_databases")
    return databases.create(), databases.create()


class Twins:
    """The same commands, at the same times, on both stores."""

    def __init__(self, pruned_url: str, whole_url: str):
        self.urls = (pruned_url, whole_url)
        self.clocks = (FakeClock(T0), FakeClock(T0))
        self.services = tuple(open_test_service(url, clock)
                              for url, clock in zip(self.urls, self.clocks))

    @property
    def pruned(self):
        return self.services[0]

    @property
    def whole(self):
        return self.services[1]

    def at(self, moment: float) -> None:
        for clock in self.clocks:
            clock.current = moment

    def run(self, command) -> None:
        for service in self.services:
            service.run(command)

    def expire(self) -> None:
        for service in self.services:
            service.expire_due()

    def close(self) -> None:
        for service in self.services:
            service.close()


def notify(version: int, aor: str, *contacts: tuple[str, float]) -> ApplyNotify:
    infos = tuple(ContactInfo(uri, id=f"id-{uri}", state="active", event="registered",
                              expires=int(expires), callid=f"n-{uri}", cseq=version + 1)
                  for uri, expires in contacts)
    document = ReginfoDocument(version, "full", (RegistrationInfo(aor, "r", "active", infos),))
    return ApplyNotify(document, NotifyContext(notify_mode("rfc", accept_unsolicited=True),
                                               f"sub-{aor}"))


def write_history(twins: Twins) -> None:
    """Registers, refreshes, de-registrations, an expiry, an admin action, NOTIFY-learned
    bindings, more than 100 events on one AoR; some of it after TIME."""
    twins.at(T0)
    twins.run(Register(ALICE, register("a1", 1, ("sip:alice@10.0.0.1", LONG))))
    twins.run(Register(ALICE, register("a2", 1, ("sip:alice@10.0.0.2", 3600))))
    twins.at(T0 + 10)
    twins.run(Register(ALICE, register("a1", 2, ("sip:alice@10.0.0.1", LONG))))
    twins.at(T0 + 20)
    twins.run(Register(BOB, register("b1", 1, ("sip:bob@10.0.1.1", LONG))))
    twins.at(T0 + 30)
    twins.run(Register(BOB, register("b1", 2, ("sip:bob@10.0.1.1", 0))))  # none left
    twins.at(T0 + 40)
    twins.run(Register(ALICE, register("a3", 1, ("sip:alice@10.0.0.3", LONG))))
    twins.run(Register(CAROL, register("c1", 1, ("sip:carol@10.0.2.1", 60))))
    twins.at(T0 + 200)
    twins.expire()  # carol's binding: expired, none left
    twins.at(T0 + 300)
    twins.run(notify(0, DAVE, ("sip:dave@10.0.3.1", LONG)))
    twins.run(notify(0, ALICE, ("sip:alice-learned@10.0.0.9", LONG)))
    twins.at(T0 + 400)
    twins.run(Register(ERIN, register("e1", 1, ("sip:erin@10.0.4.1", LONG))))
    twins.at(T0 + 500)
    twins.run(ShortenContact(ALICE, "sip:alice@10.0.0.1", 15 * DAY, "admin: shorten"))
    twins.run(Register(GINA, register("g1", 1, ("sip:gina@10.0.5.1", LONG))))
    twins.run(PutOnProbation(GINA, "sip:gina@10.0.5.1", 90, "admin: probation"))  # none left
    for cseq in range(1, 106):  # versions past 100: an automatic snapshot before TIME
        twins.at(T0 + 600 + cseq)
        twins.run(Register(FRANK, register("f1", cseq, ("sip:frank@10.0.6.1", LONG))))
    # after the horizon
    twins.at(TIME + 100)
    twins.run(Register(ERIN, register("e1", 2, ("sip:erin@10.0.4.1", LONG))))
    for cseq in range(106, 206):
        twins.at(TIME + 100 + cseq)
        twins.run(Register(FRANK, register("f1", cseq, ("sip:frank@10.0.6.1", LONG))))
    twins.at(TIME + 400)
    twins.expire()  # alice's second binding, lapsed long before TIME, expired only now
    twins.run(Register(HARRY, register("h1", 1, ("sip:harry@10.0.7.1", LONG))))
    twins.run(notify(1, DAVE, ("sip:dave@10.0.3.1", LONG), ("sip:dave@10.0.3.2", LONG)))


@pytest.fixture
def twins(store_urls):
    twins = Twins(*store_urls)
    write_history(twins)
    twins.at(TIME + 2 * DAY)
    yield twins
    twins.close()


def cli_json(url: str, *args: str, ok: bool = True):
    result = CliRunner().invoke(cli, [*args, "--store", url])
    assert (result.exit_code == 0) == ok, result.output + result.stderr
    return json.loads(result.stdout) if ok else result


def prune(url: str, before: float = TIME) -> dict:
    return cli_json(url, "prune", "--before", iso(before), "--json")


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).isoformat().replace("+00:00", "Z")


def events_of(service, aor: str) -> list[int]:
    return [e.originator_version for e in service.app.retained(aor).events]


# The story -------------------------------------------------------------------------------

def test_after_a_prune_every_answer_from_the_horizon_on_is_the_unpruned_one(twins, monkeypatch):
    monkeypatch.setattr(retained, "PAGE", 3)  # the horizon snapshots read in several pages
    monkeypatch.setattr(rebuild, "FLUSH_ROWS", 2)  # ... and written in several
    pruned, whole = twins.urls
    view_before = twins.pruned.view.rows()
    report = prune(pruned)
    assert report["removed"] == 3  # bob, carol and gina: no binding left, nothing since
    assert report["kept"] == 4  # alice, dave, erin, frank start from a horizon snapshot
    assert report["horizon"] == iso(TIME)

    # the usrloc view is untouched, and a rebuild of what is left gives it again
    assert twins.pruned.view.rows() == view_before == twins.whole.view.rows()
    twins.pruned.rebuild()
    assert twins.pruned.view.rows() == twins.whole.view.rows()
    assert cli_json(pruned, "query", "--json") == cli_json(whole, "query", "--json")

    # audit --at inside the retained window
    for aor in EVERYONE:
        for moment in (TIME, TIME + 150, TIME + 250, TIME + 401, TIME + DAY):
            at = ("audit", aor, "--at", iso(moment), "--json")
            assert cli_json(pruned, *at) == cli_json(whole, *at), (aor, iso(moment))

    # the removed AoRs are gone; an AoR with only its horizon snapshot left still exists
    app = twins.pruned.app
    ids = {aor: app.identify(aor).id for aor in EVERYONE}
    assert app.stored_among(ids.values()) == {ids[a] for a in (ALICE, DAVE, ERIN, FRANK, HARRY)}
    assert events_of(twins.pruned, ALICE) == events_of(twins.whole, ALICE)[-1:]
    assert app.retained(ALICE).seed.version == len(events_of(twins.whole, ALICE)) - 1
    assert events_of(twins.pruned, HARRY) == events_of(twins.whole, HARRY)

    # and the same commands go on giving the same answers
    twins.run(Register(BOB, register("b2", 1, ("sip:bob@10.0.1.2", LONG))))
    twins.run(Register(ALICE, register("a1", 3, ("sip:alice@10.0.0.1", LONG))))
    assert twins.pruned.view.rows() == twins.whole.view.rows()
    assert events_of(twins.pruned, BOB) == [1, 2, 3]
    twins.pruned.rebuild()
    assert twins.pruned.view.rows() == twins.whole.view.rows()


def test_the_next_publish_bodies_are_the_unpruned_ones(twins):
    prune(twins.urls[0])
    publishers = []
    for service in twins.services:
        view = PublisherView(service.app.factory.datastore)
        composer = Composer("example.com", stored_history(service.app), build_reginfo)
        projection = PublisherProjection(view, service.app.node, service.app.name, composer)
        projection.catch_up(service.app)  # a first start: from the end of the log on
        publishers.append(projection)
    twins.at(TIME + 2 * DAY + 10)
    twins.run(Register(ALICE, register("a3", 2, ("sip:alice@10.0.0.3", LONG))))
    twins.run(Register(FRANK, register("f1", 206, ("sip:frank@10.0.6.1", 0))))
    twins.run(ShortenContact(ERIN, "sip:erin@10.0.4.1", 3600, "admin: shorten"))
    twins.run(Register(DAVE, register("d1", 1, ("sip:dave@10.0.3.9", LONG))))
    bodies = []
    for service, projection in zip(twins.services, publishers):
        projection.catch_up(service.app)
        bodies.append([(d.resource, d.body) for d in projection.view.pending(service.app.node)])
    assert len(bodies[0]) == 4
    assert bodies[0] == bodies[1]
    alice = bodies[0][0][1]
    assert b"sip:alice-learned" not in alice  # learned by NOTIFY: never published
    # the binding the REGISTER did not touch is reported as its last change before the
    # horizon left it: known from the horizon snapshot only
    assert b'event="shortened"' in alice and b"sip:alice@10.0.0.1" in alice


def test_the_watchers_pictures_are_the_unpruned_ones(twins):
    """What a new watcher of each AoR is shown (every binding with its last event, and for
    a sync peer this node's own) reads the same from the horizon as from the whole log."""
    prune(twins.urls[0])
    pictures = []
    for service in twins.services:
        watched = AorPictures(watched_history(service.app))
        seen = {}
        for aor in EVERYONE:
            aor_id = service.app.identify(aor).id
            try:
                version = service.app.repository.get(aor_id).version
            except AggregateNotFoundError:  # removed by the prune: nothing left to watch
                seen[aor] = ({}, {})
                continue
            seen[aor] = tuple(
                {binding.contact: event for binding, event in
                 watched.picture(str(aor_id), version, peer=peer).values()}
                for peer in (False, True))
        pictures.append(seen)
    assert pictures[0] == pictures[1]
    everyone, peers = pictures[0][ALICE]
    learned = {contact for contact in everyone if "alice-learned" in contact}
    assert learned and not learned & set(peers)


def test_audit_before_the_horizon_says_so(twins):
    pruned, _ = twins.urls
    prune(pruned)
    earlier = ("--at", iso(TIME - 1), "--json")
    refused = cli_json(pruned, "audit", ALICE, *earlier, ok=False)
    assert refused.exit_code == 1
    assert refused.stderr.strip() == (f"pua-reginfo: error: the history of {ALICE} before "
                                      f"{iso(TIME)} was pruned: ask for a time from then on")
    # an AoR whose stored history begins after the time asked: perhaps an earlier life gone
    refused = cli_json(pruned, "audit", HARRY, *earlier, ok=False)
    assert f"the store keeps history from {iso(TIME)} on" in refused.stderr
    refused = cli_json(pruned, "audit", BOB, ok=False)
    assert refused.stderr.strip() == (f"pua-reginfo: error: no registration history for {BOB} "
                                      f"since {iso(TIME)} (the history before it was pruned)")
    refused = cli_json(pruned, "audit", BOB, *earlier, ok=False)
    assert "the history before it was pruned" in refused.stderr
    # the whole retained history, with the horizon stated
    result = CliRunner().invoke(cli, ["audit", ALICE, "--json", "--store", pruned])
    assert result.exit_code == 0
    whole = cli_json(twins.urls[1], "audit", ALICE, "--json")
    assert json.loads(result.stdout) == whole[-1:]
    assert f"the events before {iso(TIME)} were pruned" in result.stderr
    table = CliRunner().invoke(cli, ["audit", ALICE, "--store", pruned]).stdout
    assert f"the events before {iso(TIME)} were pruned" in table
    harry = CliRunner().invoke(cli, ["audit", HARRY, "--json", "--store", pruned])
    assert harry.stderr == f"pua-reginfo: note: the store keeps history from {iso(TIME)} on\n"


def test_a_second_prune_moves_the_horizon_on_and_an_earlier_time_keeps_it(twins):
    pruned, whole = twins.urls
    prune(pruned)
    later = TIME + 300
    report = prune(pruned, later)
    assert report["horizon"] == iso(later) and report["removed"] == 0
    assert twins.pruned.app.retained(FRANK).seed.horizon == later
    assert twins.pruned.app.retained(ALICE).seed.horizon == TIME  # nothing since: left as it was
    report = prune(pruned, TIME - DAY)
    assert report["horizon"] == iso(later)
    assert (report["kept"], report["removed"], report["events"]) == (0, 0, 0)
    for aor in EVERYONE:
        at = ("audit", aor, "--at", iso(later + 200), "--json")
        assert cli_json(pruned, *at) == cli_json(whole, *at)
    twins.pruned.rebuild()
    assert twins.pruned.view.rows() == twins.whole.view.rows()
