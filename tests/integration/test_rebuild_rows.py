"""The rebuild reads rows straight from stored notifications: the same rows, every time.

A history with every contact event (REGISTERs, `*`, expiry, each administrative action,
reginfo NOTIFYs whose contacts carry +sip.instance/reg-id, GRUUs, received, Path and
User-Agent, and end with each terminating event) is stored through the application. Read
back as the rebuild reads it, each notification, and the whole log folded, gives what
the usrloc projection gives for the events the mapper makes of it; so does a store whose
events the direct reading cannot take (compressed, or a binding stored without its key),
through the mapper. A rebuild in many small folds ends with the view kept incrementally.
"""

from __future__ import annotations

import json
from uuid import UUID

import pytest
from eventsourcing.persistence import MapperDeserialisationError, Notification

from domain import CONTACT_EVENTS, Binding, ContactUpdate, RegisterRequest
from domain.binding_refresh import BindingRefresh
from domain.reginfo import ContactInfo, ReginfoDocument, RegistrationInfo, TempGruu
from infrastructure.commands import (
    ApplyNotify,
    CreateContact,
    DeactivateContact,
    ExpireDue,
    NotifyContext,
    PutOnProbation,
    Register,
    RejectContact,
    ShortenContact,
)
from projections import UsrlocProjection
from projections.stored_log import StoredLog
from projections.usrloc import rebuild as rebuild_module
from projections.usrloc.stored_rows import StoredRows
from sip_gateway.server.notify_modes import notify_mode
from tests.integration.format1 import load_format1
from tests.support import FakeClock, open_test_service

ALICE, BOB, CAROL = "sip:alice@example.com", "sip:bob@example.com", "sip:carol@peer.example.net"
EDGE = ("<sip:edge1.example.com;lr>", "<sip:edge2.example.com;lr>")
INSTANCE = "<urn:uuid:00000000-0000-0000-0000-0000000000a1>"


def outbound(uri: str, expires: int) -> ContactUpdate:
    return ContactUpdate(uri, expires, q=0.7, instance=INSTANCE, reg_id=1,
                         methods=("INVITE", "MESSAGE"), display_name="Alice")


def register(callid: str, cseq: int, *updates: ContactUpdate, wildcard: bool = False):
    return RegisterRequest(callid, cseq, updates, wildcard=wildcard,
                           received="udp:198.51.100.7:5060", path=EDGE,
                           user_agent="phone/1.0", socket="udp:127.0.0.1:5060")


def reginfo(version: int, *contacts: ContactInfo) -> ApplyNotify:
    document = ReginfoDocument(version, "partial", (RegistrationInfo(
        CAROL, "r1", "active", contacts),))
    return ApplyNotify(document, NotifyContext(notify_mode("rfc", accept_unsolicited=True),
                                               "peer-1"))


def notified(n: int, version: int, state: str = "active", event: str = "registered",
             **extra) -> ContactInfo:
    params = (("+sip.instance", f'"<urn:uuid:00000000-0000-0000-0000-00000000000{n}>"'),
              ("reg-id", "1"), ("video", "")) if n % 2 else ()
    return ContactInfo(
        uri=f"sip:carol@203.0.113.{n}:5070", id=f"c{n}", state=state, event=event,
        expires=0 if state == "terminated" else 3600, q=0.5, callid=f"carol-{n}", cseq=version,
        display_name="Carol", unknown_params=params, pub_gruu=f"sip:carol@peer.example.net;gr={n}",
        temp_gruu=TempGruu(f"sip:tgruu.{n}.{version}@peer.example.net;gr", 1),
        received="sip:198.18.0.9:5060", path="<sip:p1.peer.example.net;lr>,<sip:p2;lr>",
        user_agent=f"peer-phone/{n}", **extra)


def history(service, clock: FakeClock) -> None:
    """Every contact event, from every origin, through the application."""
    run = lambda command: (service.app.run(command, clock.now()), clock.advance(1))  # noqa: E731
    run(Register(ALICE, register("a", 1, outbound("sip:alice@10.0.0.1:5062", 3600),
                                 ContactUpdate("sip:alice@10.0.0.2", 60))))     # registered
    run(Register(ALICE, register("a", 2, outbound("sip:alice@10.0.0.1:5062", 3600))))  # refreshed
    run(Register(BOB, register("b", 1, ContactUpdate("sip:bob@10.0.1.1", 3600),
                               ContactUpdate("sip:bob@10.0.1.2", 3600))))
    run(Register(BOB, register("b", 2, ContactUpdate("sip:bob@10.0.1.2", 0))))  # unregistered
    run(Register(BOB, register("b", 3, wildcard=True)))                          # `*`
    clock.advance(120)
    run(ExpireDue(tuple(service.app.identify(a).id for a in (ALICE, BOB))))      # expired
    for n, contact in enumerate(("sip:bob@10.0.2.1", "sip:bob@10.0.2.2", "sip:bob@10.0.2.3",
                                 "sip:bob@10.0.2.4")):
        run(CreateContact(BOB, ContactUpdate(contact, 1800, q=0.2), f"adm-{n}", "admin"))
    run(ShortenContact(BOB, "sip:bob@10.0.2.1", 60, "admin"))                    # shortened
    run(DeactivateContact(BOB, "sip:bob@10.0.2.2", "admin"))                     # deactivated
    run(RejectContact(BOB, "sip:bob@10.0.2.3", "admin"))                         # rejected
    run(PutOnProbation(BOB, "sip:bob@10.0.2.4", 90, "admin"))                    # probation
    run(reginfo(1, *(notified(n, 1) for n in range(1, 7))))
    run(reginfo(2, notified(1, 2, event="refreshed"), notified(2, 2, event="shortened"),
                notified(7, 2, event="created")))
    run(reginfo(3, notified(1, 3, "terminated", "unregistered"),
                notified(2, 3, "terminated", "expired"),
                notified(3, 3, "terminated", "deactivated"),
                notified(4, 3, "terminated", "probation", retry_after=30),
                notified(5, 3, "terminated", "rejected")))
    service.catch_up()


@pytest.fixture
def service(store_url):
    clock = FakeClock()
    service = open_test_service(store_url, clock)
    history(service, clock)
    yield service
    service.close()


def normal_path(service, stored) -> tuple[list, list]:
    """What the usrloc projection writes for these notifications' events."""
    events = [service.app.mapper.to_domain_event(Notification(
        id=row[0], originator_id=row[1], originator_version=row[2], topic=row[3], state=row[4]))
        for row in stored]
    upserts, deletes, refreshes = UsrlocProjection(service.view).changes(events)
    return sorted(row.as_tuple() for row in upserts), sorted(deletes), sorted(refreshes)


def direct_path(rows: StoredRows, stored) -> tuple[list, list, list]:
    changes: dict = {}
    rows.fold(stored, changes)
    upserts, deletes, refreshes = rows.split(changes)
    return sorted(upserts), sorted(deletes), sorted(refreshes)


def test_the_history_has_every_contact_event_from_every_origin(service):
    notifications = service.app.recorder.select_notifications(1, limit=10_000)
    contact = [service.app.mapper.to_domain_event(n) for n in notifications
               if "Contact" in n.topic]
    assert {e.EVENT for e in contact} == set(CONTACT_EVENTS)
    assert {e.origin for e in contact} == {"register", "expiry", "admin", "notify"}
    assert any(isinstance(e.binding, Binding) and e.binding.pub_gruu and e.binding.temp_gruu
               and e.binding.path and e.binding.instance and e.binding.reg_id for e in contact)
    assert any(isinstance(e.binding, BindingRefresh) for e in contact)  # stored as changed


def test_each_stored_notification_reads_to_the_rows_the_projection_writes(service,
                                                                          monkeypatch):
    rows = StoredRows(service.app.mapper)
    assert rows.compact  # the application stores events as the direct reading reads them
    monkeypatch.setattr(rows, "_event", None)  # and it never needs the mapper for them
    stored = StoredLog(service.app.recorder).read(1, 10_000)
    assert len(stored) == service.app.recorder.max_notification_id()
    for row in stored:
        assert direct_path(rows, [row]) == normal_path(service, [row]), row[3]


def test_the_whole_log_folded_leaves_the_rows_the_projection_leaves(service):
    stored = StoredLog(service.app.recorder).read(1, 10_000)
    upserts, deletes, refreshes = direct_path(StoredRows(service.app.mapper), stored)
    assert (upserts, deletes, refreshes) == normal_path(service, stored)
    assert upserts == sorted(row.as_tuple() for row in service.view.rows())
    assert refreshes == []  # each refresh met the row its binding's registration made


def test_refreshes_merge_into_the_row_their_fold_holds_or_set_columns_of_the_view(service):
    stored = StoredLog(service.app.recorder).read(1, 10_000)
    refresh = next(i for i, row in enumerate(stored)
                   if row[3].endswith("ContactRefreshed") and b'"r":' in row[4])
    rows = StoredRows(service.app.mapper)
    for part in (stored[:refresh], stored[refresh:]):  # the refresh starts the second fold
        assert direct_path(rows, part) == normal_path(service, part)
    upserts, deletes, refreshes = direct_path(rows, stored[refresh:])
    assert refreshes and all(columns["event"] == "refreshed" for _, _, columns in refreshes)


def test_the_log_is_read_as_the_recorder_reads_it(service):
    recorder = service.app.recorder
    for start, limit in ((1, 10_000), (7, 5)):
        expected = [(n.id, n.originator_id, n.originator_version, n.topic, n.state)
                    for n in recorder.select_notifications(start, limit=limit)]
        assert [(i, UUID(text), *rest) for i, text, *rest in
                StoredLog(recorder).read(start, limit)] == expected
    assert StoredLog(recorder).read(recorder.max_notification_id() + 1, 10) == []


@pytest.fixture
def format1(store_url):
    """A service on a store of format 1 events (tests/fixtures/format1)."""
    service = open_test_service(store_url, FakeClock())
    load_format1(service)
    yield service
    service.close()


def contact_rows(service) -> list:
    return [row for row in StoredLog(service.app.recorder).read(1, 10_000) if "Contact" in row[3]]


def edited(row, edit) -> tuple:
    """`row` with its stored binding changed by `edit`."""
    state = json.loads(row[4])
    edit(state["binding"]["_data_"])
    return (*row[:4], json.dumps(state).encode())


@pytest.mark.parametrize("edit", [
    lambda binding: binding.pop("key"),  # what a Binding then computes
    lambda binding: binding.update(flags=2**64 + 3),  # orjson: a float; the mapper: an int
], ids=["without its key", "an integer beyond 64 bits"])
def test_a_format1_binding_stored_otherwise_is_read_through_the_mapper(format1, edit):
    rows = StoredRows(format1.app.mapper)
    for row in contact_rows(format1):
        changed = edited(row, edit)
        assert direct_path(rows, [changed]) == normal_path(format1, [changed])


def with_colour(service) -> tuple:
    """A stored contact event whose binding has a field a Binding has not."""
    row = contact_rows(service)[0]
    state = json.loads(row[4])
    if "b" in state:  # format 2, written as compactly as the mapper writes it
        state["b"]["colour"] = "blue"
        return (*row[:4], json.dumps(state, separators=(",", ":")).encode())
    state["binding"]["_data_"]["colour"] = "blue"
    return (*row[:4], json.dumps(state).encode())


def fails_as_through_the_mapper(service, stored) -> None:
    with pytest.raises(MapperDeserialisationError):
        normal_path(service, [stored])
    with pytest.raises(MapperDeserialisationError):
        direct_path(StoredRows(service.app.mapper), [stored])


def test_a_binding_with_a_field_it_does_not_have_fails_as_through_the_mapper(service):
    fails_as_through_the_mapper(service, with_colour(service))


def test_a_format1_binding_with_a_field_it_does_not_have_fails_the_same(format1):
    fails_as_through_the_mapper(format1, with_colour(format1))


def test_compressed_events_are_read_through_the_mapper_and_rebuild_the_same_view(
        store_url, monkeypatch):
    monkeypatch.setenv("COMPRESSOR_TOPIC", "eventsourcing.compressor:ZlibCompressor")
    clock = FakeClock()
    service = open_test_service(store_url, clock)
    try:
        history(service, clock)
        rows = StoredRows(service.app.mapper)
        assert not rows.direct and rows.compact  # format 2 is read after decompressing
        stored = StoredLog(service.app.recorder).read(1, 10_000)
        assert direct_path(rows, stored) == normal_path(service, stored)
        live = service.view.rows()
        service.rebuild()
        assert service.view.rows() == live
    finally:
        service.close()


def test_a_rebuild_in_many_small_folds_ends_with_the_incremental_view(service, monkeypatch):
    monkeypatch.setattr(rebuild_module, "READ_SIZE", 3)
    monkeypatch.setattr(rebuild_module, "FLUSH_ROWS", 2)
    writes: list[int] = []
    apply_values = service.view.apply_values.__func__

    def counted(view, upserts, deletes, tracking, after, refreshes=()):
        writes.append(tracking.notification_id)
        apply_values(view, upserts, deletes, tracking, after, refreshes)

    monkeypatch.setattr(type(service.view), "apply_values", counted)
    live = service.view.rows()
    progress: list[int] = []
    applied = service.rebuild(progress.append)
    end = service.app.recorder.max_notification_id()
    assert applied == sum(progress) == end
    assert len(writes) > 5 and writes == sorted(writes) and writes[-1] == end
    assert service.view.rows() == live
    assert service.view.max_tracking_id(service.app.name) == end
