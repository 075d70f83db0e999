"""Format 2 stores every event exactly as it was, shorter; format 1 is still read, and
what format 2 cannot hold is written in format 1."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from uuid import UUID

import pytest
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper, UUIDAsHex

from domain import AddressOfRecord, Binding, ContactUpdate, RegisterRequest, normalize_aor
from domain.binding_refresh import BindingRefresh
from domain.events import (
    CONTACT_EVENTS, AddressOfRecordHorizon, AddressOfRecordSnapshot, RegistrationActivated, RegistrationInitialized, RegistrationTerminated,
)
from infrastructure.event_format import PREFIX, EventFormat
from infrastructure.transcodings import BindingAsDict

WHEN = datetime(2030, 3, 16, 12, 0, 0, 250000, tzinfo=timezone.utc)
T = WHEN.timestamp()
AOR_ID = UUID(int=7)


def mapper(**extra) -> EventFormat:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DatetimeAsISO(), BindingAsDict()):
        transcoder.register(transcoding)
    return EventFormat(transcoder=transcoder, **extra)


def rich_binding(**changes) -> Binding:
    values = dict(contact="sip:alice@192.0.2.1:5062;transport=tcp", expires=T + 3600,
                  callid="call-1", cseq=7, registered_at=T - 100.5, q=0.7,
                  received="tcp:192.0.2.2:5099", path=("<sip:e1;lr>", "<sip:e2;lr>"),
                  user_agent="phone/1", instance="<urn:uuid:00000000-0000-0000-0000-000000000001>",
                  reg_id=2, methods=("INVITE", "MESSAGE"), flags=1, cflags=2,
                  socket="tcp:192.0.2.3:5060", display_name="Alice",
                  params=(("video", None), ("x", "y")), pub_gruu="sip:alice@example.com;gr=1",
                  temp_gruu="sip:t1@example.com;gr", temp_gruu_first_cseq=3,
                  subscription="sub-1")
    values.update(changes)
    return Binding(**values)


def contact(name: str, binding, origin: str = "notify", cause: str = "NOTIFY v3", **extra):
    if name == "probation":
        extra.setdefault("retry_after", 30)
    return CONTACT_EVENTS[name](originator_id=AOR_ID, originator_version=5, timestamp=WHEN,
                                aor="sip:alice@example.com", binding=binding, origin=origin,
                                node="n1", cause=cause, **extra)


def every_event() -> list:
    fields = dict(originator_id=AOR_ID, timestamp=WHEN, aor="sip:alice@example.com",
                  origin="register", node="n1", cause="REGISTER call-id=c cseq=1")
    events = [RegistrationInitialized(originator_version=1, originator_topic="t:AoR",
                                      key="alice", **fields),
              RegistrationActivated(originator_version=2, **fields),
              RegistrationTerminated(originator_version=9, **fields)]
    events += [contact(name, rich_binding()) for name in CONTACT_EVENTS]
    events += [contact(name, Binding("sip:bob@192.0.2.7", T + 60, "c", 1, T), "register",
                       "REGISTER call-id=c cseq=1") for name in CONTACT_EVENTS]
    events.append(contact("refreshed", BindingRefresh(
        rich_binding().key, "call-1", 8, (("expires", T + 7200), ("path", ("<sip:e3;lr>",)),
                                          ("params", (("x", "z"),)))),
        "register", "REGISTER call-id=call-1 cseq=8"))
    return events


@pytest.mark.parametrize("event", every_event(), ids=lambda e: type(e).__name__)
def test_every_event_comes_back_exactly_as_it_went_in_format_2(event):
    for format_ in (mapper(), mapper(compressor=ZlibCompressor())):
        stored = format_.to_stored_event(event)
        assert format_.plain(stored.state).startswith(PREFIX)
        back = format_.to_domain_event(stored)
        assert type(back) is type(event) and vars(back) == vars(event)


@pytest.mark.parametrize("event", [e for e in every_event() if not isinstance(
    getattr(e, "binding", None), BindingRefresh)], ids=lambda e: type(e).__name__)
def test_events_stored_in_format_1_are_read_as_before(event):  # format 1 had no refresh
    format_ = mapper()
    stored = Mapper.to_stored_event(format_, event)
    assert stored.state.startswith(b'{"timestamp"') or stored.state.startswith(b'{"originator')
    assert vars(format_.to_domain_event(stored)) == vars(event)


def state(event) -> dict:
    return json.loads(mapper().to_stored_event(event).state)


def test_a_refresh_is_its_key_its_register_and_what_changed():
    refresh = BindingRefresh("instance|<urn:uuid:a>|1", "c9", 4, (("expires", T + 600),))
    assert state(contact("refreshed", refresh, "register", "REGISTER call-id=c9 cseq=4")) == {
        "f": 2, "t": 1899892800250000, "a": "sip:alice@example.com", "o": "r", "n": "n1",
        "r": {"k": "instance|<urn:uuid:a>|1", "i": "c9", "s": 4, "E": 600}}


def test_what_can_be_computed_again_is_left_out_and_nothing_else():
    plain = Binding("sip:bob@192.0.2.7", T + 60, "c", 1, T + 0.5)
    stored = state(contact("registered", plain, "register", "REGISTER call-id=c cseq=1"))
    assert "c" not in stored  # the cause is the binding's Call-ID and CSeq
    assert stored["b"] == {"c": "sip:bob@192.0.2.7", "E": 60, "i": "c", "s": 1,
                           "r": T + 0.5,  # no default; a time not whole seconds after
                           "k": "uri|sip|bob||192.0.2.7|||"}  # the key as it was given
    other = state(contact("registered", Binding("sip:bob@192.0.2.7", T + 60, "c", 1, T,
                                                key="legacy-key"), "register", "by hand"))
    assert other["c"] == "by hand" and other["b"]["k"] == "legacy-key"


@pytest.mark.parametrize("event", [
    contact("registered", rich_binding(q=float("nan"))),
    contact("registered", rich_binding(flags=2**64 + 1)),
    contact("registered", rich_binding(), origin="migration"),
    contact("registered", rich_binding()).__class__(
        originator_id=AOR_ID, originator_version=5, timestamp=WHEN.astimezone(
            timezone(timedelta(hours=2))), aor="a", binding=rich_binding(), origin="admin",
        node="n1", cause="x"),
], ids=["NaN", "beyond 64 bits", "unknown origin", "not UTC"])
def test_what_format_2_cannot_hold_is_written_in_format_1(event):
    format_ = mapper()
    stored = format_.to_stored_event(event)
    assert not stored.state.startswith(PREFIX)
    back = vars(format_.to_domain_event(stored))
    if back["binding"].q == back["binding"].q:  # NaN is not equal to itself
        assert back == vars(event)


def test_a_field_format_2_does_not_know_is_written_in_format_1():
    event = contact("registered", rich_binding())
    object.__setattr__(event, "__dict__", {**vars(event), "colour": "blue"})
    stored = mapper().to_stored_event(event)
    assert not stored.state.startswith(PREFIX)
    assert vars(mapper().to_domain_event(stored))["colour"] == "blue"


def test_an_aor_snapshot_comes_back_exactly_in_format_2():
    aor = AddressOfRecord.initialize(normalize_aor("sip:alice@example.com"), "register", "n1",
                                     "test", T)
    aor.register(RegisterRequest("c1", 1, (ContactUpdate("sip:alice@192.0.2.1", 600),
                                           ContactUpdate("sip:alice@192.0.2.2", 60, q=0.5))),
                 "n1", T)
    aor.collect_events()
    snapshot = AddressOfRecordSnapshot.take(aor)
    format_ = mapper()
    stored = format_.to_stored_event(snapshot)
    assert stored.state.startswith(PREFIX) and len(stored.state) < 500
    back = format_.to_domain_event(stored)
    assert vars(back) == vars(snapshot)
    assert vars(back.mutate(None)) == vars(aor)
    object.__setattr__(aor, "colour", "blue")  # an attribute format 2 does not know
    stored = format_.to_stored_event(AddressOfRecordSnapshot.take(aor))
    assert not stored.state.startswith(PREFIX)
    assert format_.to_domain_event(stored).mutate(None).colour == "blue"


def test_a_prune_horizon_comes_back_exactly_in_format_2():
    aor = AddressOfRecord.initialize(normalize_aor("sip:alice@example.com"), "register", "n1",
                                     "test", T)
    aor.register(RegisterRequest("c1", 1, (ContactUpdate("sip:alice@192.0.2.1", 600),)), "n1", T)
    aor.collect_events()
    taken = AddressOfRecordSnapshot.take(aor)
    horizon = AddressOfRecordHorizon(
        originator_id=taken.originator_id, originator_version=taken.originator_version,
        timestamp=WHEN, topic=taken.topic, state=taken.state,
        changes={key: ["registered", "register", T] for key in aor.bindings})
    format_ = mapper()
    stored = format_.to_stored_event(horizon)
    assert stored.state.startswith(PREFIX)
    assert vars(format_.to_domain_event(stored)) == vars(horizon)
