"""Random command sequences on random AoRs, on SQLite and PostgreSQL.

Whatever the sequence: every recorded transition is one the RFC 3680 tables allow,
a refused command records nothing, replaying the stored events gives the aggregate the
application holds, and the usrloc view equals both the aggregates and its own rebuild.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain import (
    CONTACT_MACHINE,
    REGISTRATION_MACHINE,
    AddressOfRecord,
    ContactEvent,
    ContactUpdate,
    DomainError,
    RegisterRequest,
    RegistrationActivated,
    RegistrationTerminated,
)
from infrastructure.application import Registrations
from infrastructure.commands import (
    CreateContact,
    DeactivateContact,
    PutOnProbation,
    Register,
    RejectContact,
    ShortenContact,
)
from tests.support import FakeClock, open_test_service

AORS = ["sip:alice@example.com", "sip:bob@example.com", "sip:Carol@example.org"]
CONTACTS = ["sip:u@10.0.0.1", "sip:u@10.0.0.2:5062", "sip:u@[2001:db8::1]", "sip:u@host.example"]

contact_update = st.builds(
    ContactUpdate,
    uri=st.sampled_from(CONTACTS),
    expires=st.sampled_from([0, 30, 60, 3600]),
    q=st.none() | st.sampled_from([0.1, 0.5, 1.0]),
)
register_cmd = st.tuples(
    st.just("register"), st.sampled_from(AORS),
    st.builds(RegisterRequest, callid=st.sampled_from(["c1", "c2"]), cseq=st.integers(1, 6),
              contacts=st.lists(contact_update, min_size=1, max_size=3).map(tuple)),
)
wildcard_cmd = st.tuples(
    st.just("register"), st.sampled_from(AORS),
    st.builds(RegisterRequest, callid=st.sampled_from(["c1", "c2"]), cseq=st.integers(1, 6),
              wildcard=st.just(True)),
)
admin_cmd = st.tuples(
    st.sampled_from(["create", "shorten", "deactivate", "probation", "reject"]),
    st.sampled_from(AORS), st.sampled_from(CONTACTS),
)
step = st.tuples(
    st.one_of(register_cmd, register_cmd, wildcard_cmd, admin_cmd,
              st.tuples(st.just("expire")), st.tuples(st.just("catch_up"))),
    st.sampled_from([0, 1, 20, 45, 70]),
)


def run(service, clock: FakeClock, command: tuple) -> None:
    app = service.app
    kind, now = command[0], clock.now()
    if kind == "register":
        app.run(Register(command[1], command[2]), now)
    elif kind == "create":
        app.run(CreateContact(command[1], ContactUpdate(command[2], 60), "adm", "prop"), now)
    elif kind == "shorten":
        app.run(ShortenContact(command[1], command[2], 10, "prop"), now)
    elif kind == "probation":
        app.run(PutOnProbation(command[1], command[2], 30, "prop"), now)
    elif kind in ("deactivate", "reject"):
        make = DeactivateContact if kind == "deactivate" else RejectContact
        app.run(make(command[1], command[2], "prop"), now)
    elif kind == "expire":
        service.expire_due()
    else:
        service.catch_up()


def check_transitions(app: Registrations) -> None:
    contact_state: dict[tuple, str] = {}
    registration_state: dict = {}
    for notification in app.recorder.select_notifications(1, 1_000_000):
        event = app.mapper.to_domain_event(notification)
        aor = event.originator_id
        if isinstance(event, ContactEvent):
            key = (aor, event.binding.key)
            state = contact_state.get(key, "init")
            new = CONTACT_MACHINE.next_state(state, event.EVENT)
            contact_state[key] = "init" if new == "terminated" else new  # reported, forgotten
        elif isinstance(event, (RegistrationActivated, RegistrationTerminated)):
            state = registration_state.get(aor, "init")
            if isinstance(event, RegistrationActivated):
                if state == "terminated":
                    state = REGISTRATION_MACHINE.next_state(state, "reset")
                registration_state[aor] = REGISTRATION_MACHINE.next_state(state, "activated")
            else:
                registration_state[aor] = REGISTRATION_MACHINE.next_state(state, "terminated")


def check_replay_and_views(service) -> None:
    app = service.app
    service.catch_up()
    live_rows = service.view.rows()
    expected = set()
    for aor in AORS:
        identity = app.identify(aor)
        stored = list(app.repository.event_store.get(identity.id))
        if not stored:
            continue
        replayed: AddressOfRecord | None = None
        for event in stored:
            replayed = event.mutate(replayed)
        held = app.repository.get(identity.id)  # from the latest snapshot, if any
        assert (replayed.state, replayed.bindings) == (held.state, held.bindings)
        assert held.state == "active" if held.bindings else held.state in ("init", "terminated")
        expected |= {(str(held.id), b.contact, b.expires, b.callid, b.cseq, b.q)
                     for b in held.bindings.values()}
    assert {(r.aor_id, r.contact, r.expires, r.callid, r.cseq, r.q) for r in live_rows} == expected
    service.rebuild()
    assert service.view.rows() == live_rows


@contextmanager
def fresh_store(kind: str, postgres_url: str | None):
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'store.db'}"
        return
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS registrations_events, registrations_snapshots, "
                           "usrloc_location, usrloc_tracking, pua_reginfo_schema")
    yield postgres_url


def property_test(kind: str, postgres_url: str | None, steps) -> None:
    clock = FakeClock()
    with fresh_store(kind, postgres_url) as url:
        service = open_test_service(url, clock)
        try:
            for command, advance in steps:
                clock.advance(advance)
                before = service.app.recorder.max_notification_id()
                try:
                    run(service, clock, command)
                except DomainError:
                    assert service.app.recorder.max_notification_id() == before
            check_transitions(service.app)
            check_replay_and_views(service)
        finally:
            service.close()


@pytest.fixture(autouse=True)
def frequent_snapshots(monkeypatch):
    monkeypatch.setattr(Registrations, "snapshotting_intervals", {AddressOfRecord: 4})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=1, max_size=30))
def test_random_sequences_on_sqlite(steps):
    property_test("sqlite", None, steps)


@pytest.mark.postgres
def test_random_sequences_on_postgresql(postgres_url):
    @settings(max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(steps=st.lists(step, min_size=1, max_size=30))
    def sequences(steps):
        property_test("postgresql", postgres_url, steps)

    sequences()
