"""A REGISTER refresh of a local binding records only what changed (BindingRefresh)."""

import pytest

from domain import AddressOfRecord, Binding, ContactUpdate, RegisterRequest, normalize_aor
from domain.binding_refresh import BindingRefresh, MissingBinding, binding_after
from domain.events import ContactRefreshed, replayed, with_bindings

T0 = 1_800_000_000.0
ALICE = normalize_aor("sip:alice@example.com")
PHONE = ContactUpdate("sip:alice@10.0.0.1:5062", 600, instance="<urn:uuid:a1>", reg_id=1)


def request(callid: str, cseq: int, update: ContactUpdate = PHONE, **extra) -> RegisterRequest:
    values = dict(received="udp:198.51.100.7:5060", user_agent="phone/1", socket="udp:1:5060")
    return RegisterRequest(callid, cseq, (update,), **{**values, **extra})


def registered() -> AddressOfRecord:
    aor = AddressOfRecord.initialize(ALICE, "register", "n1", "test", T0)
    aor.register(request("c1", 1), "n1", T0)
    aor.collect_events()
    return aor


def test_a_refresh_records_the_key_the_register_and_only_the_fields_that_changed():
    aor = registered()
    before = aor.bindings[PHONE.key]
    aor.register(request("c1", 2), "n1", T0 + 300)
    [event] = aor.collect_events()
    assert isinstance(event, ContactRefreshed)
    assert event.binding == BindingRefresh(PHONE.key, "c1", 2, (("expires", T0 + 900),))
    assert aor.bindings[PHONE.key] == Binding(**{**vars(before), "cseq": 2,
                                                 "expires": T0 + 900})


def test_a_refresh_from_a_new_address_records_the_new_address():
    aor = registered()
    moved = ContactUpdate("sip:alice@10.0.0.9:5062", 600, instance="<urn:uuid:a1>", reg_id=1)
    aor.register(request("c2", 1, moved, received="udp:203.0.113.5:5060"), "n1", T0 + 60)
    [event] = aor.collect_events()
    assert dict(event.binding.changes) == {"contact": "sip:alice@10.0.0.9:5062",
                                           "expires": T0 + 660,
                                           "received": "udp:203.0.113.5:5060"}
    assert event.binding.callid == "c2" and event.binding.cseq == 1
    assert aor.bindings[PHONE.key].contact == "sip:alice@10.0.0.9:5062"


def test_a_binding_a_notify_told_of_is_recorded_whole_when_a_register_takes_it_over():
    aor = registered()
    told = Binding(**{**vars(aor.bindings[PHONE.key]), "subscription": "sub-1"})
    aor.bindings[PHONE.key] = told
    aor.register(request("c1", 2), "n1", T0 + 60)
    [event] = aor.collect_events()
    assert isinstance(event.binding, Binding) and event.binding.is_local


def test_a_history_folds_refreshes_into_the_bindings_they_refresh():
    aor = AddressOfRecord.initialize(ALICE, "register", "n1", "test", T0)
    aor.register(request("c1", 1), "n1", T0)
    aor.register(request("c1", 2), "n1", T0 + 300)
    pairs = list(with_bindings(aor.collect_events()))
    assert [type(e).__name__ for e, _ in pairs] == [
        "RegistrationInitialized", "ContactRegistered", "RegistrationActivated",
        "ContactRefreshed"]
    assert [b is None for _, b in pairs] == [True, False, True, False]
    assert pairs[-1][1] == aor.bindings[PHONE.key] and pairs[-1][1].cseq == 2


def test_a_refresh_of_a_binding_the_history_does_not_hold_is_an_error():
    refresh = BindingRefresh("uri|sip|x||h|||", "c", 2, (("expires", T0),))
    with pytest.raises(MissingBinding):
        binding_after(refresh, None)


def test_an_aor_replayed_from_its_events_is_the_aor_that_made_them():
    aor = AddressOfRecord.initialize(ALICE, "register", "n1", "test", T0)
    aor.register(request("c1", 1), "n1", T0)
    aor.register(request("c1", 2), "n1", T0 + 300)
    aor.deactivate(PHONE.uri, "n1", "admin", T0 + 400)
    events = aor.collect_events()
    again = replayed(None, events)
    assert vars(again) == vars(aor) and again.bindings == {} and again.state == "terminated"
    middle = replayed(replayed(None, events[:4]), events[4:])
    assert vars(middle) == vars(aor)
