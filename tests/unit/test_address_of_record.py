"""Stories of one AoR: REGISTER (RFC 3261 10.3), expiry and RFC 3680 admin actions."""

import pytest

from domain import (
    AddressOfRecord,
    Binding,
    ContactUpdate,
    IllegalTransition,
    InvalidRequest,
    OutOfOrderRequest,
    RegisterRequest,
    UnknownContact,
    normalize_aor,
)
from tests.support import register

T0 = 1_800_000_000.0
NODE = "n1"
ALICE = normalize_aor("sip:alice@example.com")


def new_aor() -> AddressOfRecord:
    aor = AddressOfRecord.initialize(ALICE, "register", NODE, "test", T0)
    aor.collect_events()
    return aor


def names(aor: AddressOfRecord) -> list[str]:
    return [getattr(e, "EVENT", type(e).__name__) for e in aor.collect_events()]


def test_first_register_creates_a_binding_and_activates_the_registration():
    aor = new_aor()
    aor.register(register("c1", 1, ("sip:alice@10.0.0.1", 3600)), NODE, T0)
    assert names(aor) == ["registered", "RegistrationActivated"]
    assert aor.state == "active"
    [binding] = aor.live_bindings(T0)
    assert binding.expires == T0 + 3600 and binding.callid == "c1" and binding.cseq == 1


def test_a_refresh_with_a_higher_cseq_keeps_the_first_registration_time():
    aor = new_aor()
    aor.register(register("c1", 1, ("sip:alice@10.0.0.1", 3600)), NODE, T0)
    aor.register(register("c1", 2, ("sip:alice@10.0.0.1", 600)), NODE, T0 + 100)
    assert names(aor)[-1] == "refreshed"
    [binding] = aor.live_bindings(T0 + 100)
    assert binding.expires == T0 + 700 and binding.cseq == 2 and binding.registered_at == T0


def test_same_call_id_with_a_lower_or_equal_cseq_is_out_of_order_and_changes_nothing():
    aor = new_aor()
    aor.register(register("c1", 5, ("sip:alice@10.0.0.1", 3600)), NODE, T0)
    aor.collect_events()
    for cseq in (5, 4):
        with pytest.raises(OutOfOrderRequest, match="CSeq") as refused:
            aor.register(register("c1", cseq, ("sip:alice@10.0.0.1", 0),
                                  ("sip:alice@10.0.0.2", 60)), NODE, T0 + 1)
        assert refused.value.sip_status == 400
    assert names(aor) == []
    assert [b.contact for b in aor.live_bindings(T0 + 1)] == ["sip:alice@10.0.0.1"]


def test_the_request_already_applied_again_changes_nothing_and_is_answered():
    """A retransmission that outlived its server transaction (a restart between the
    commit and the 200): same Call-ID, CSeq and Contacts as the request that made the
    bindings. It is the same request, so it is answered with the bindings, not refused."""
    aor = new_aor()
    aor.register(register("c1", 5, ("sip:alice@10.0.0.1", 3600), ("sip:alice@10.0.0.2", 60)),
                 NODE, T0)
    aor.register(register("c1", 6, ("sip:alice@10.0.0.1", 3600), ("sip:alice@10.0.0.2", 0)),
                 NODE, T0 + 1)
    aor.collect_events()
    again = register("c1", 6, ("sip:alice@10.0.0.1", 3600), ("sip:alice@10.0.0.2", 0))
    assert aor.is_applied(again, T0 + 2)
    aor.register(again, NODE, T0 + 2)
    assert names(aor) == []
    [binding] = aor.live_bindings(T0 + 2)
    assert (binding.contact, binding.cseq, binding.expires) == ("sip:alice@10.0.0.1", 6, T0 + 3601)


def test_the_same_cseq_with_another_contact_set_is_out_of_order_with_a_400():
    aor = new_aor()
    aor.register(register("c1", 5, ("sip:alice@10.0.0.1", 3600)), NODE, T0)
    aor.collect_events()
    for contacts in ((("sip:alice@10.0.0.1", 3600), ("sip:alice@10.0.0.3", 3600)),
                     (("sip:alice@10.0.0.1", 0),)):
        request = register("c1", 5, *contacts)
        assert not aor.is_applied(request, T0 + 1)
        with pytest.raises(OutOfOrderRequest) as refused:
            aor.register(request, NODE, T0 + 1)
        assert refused.value.sip_status == 400
    assert names(aor) == []


def test_a_different_call_id_updates_the_binding_whatever_its_cseq():
    aor = new_aor()
    aor.register(register("c1", 5, ("sip:alice@10.0.0.1", 3600)), NODE, T0)
    aor.register(register("c2", 1, ("sip:alice@10.0.0.1", 60)), NODE, T0 + 1)
    [binding] = aor.live_bindings(T0 + 1)
    assert (binding.callid, binding.cseq) == ("c2", 1)


def test_expires_zero_unregisters_and_the_last_binding_terminates_the_registration():
    aor = new_aor()
    aor.register(register("c1", 1, ("sip:alice@10.0.0.1", 3600), ("sip:alice@10.0.0.2", 3600)),
                 NODE, T0)
    aor.collect_events()
    aor.register(register("c1", 2, ("sip:alice@10.0.0.1", 0)), NODE, T0 + 5)
    assert names(aor) == ["unregistered"] and aor.state == "active"
    aor.register(register("c1", 3, ("sip:alice@10.0.0.2", 0)), NODE, T0 + 6)
    assert names(aor) == ["unregistered", "RegistrationTerminated"] and aor.state == "terminated"


def test_wildcard_removes_every_binding_but_respects_cseq_ordering():
    aor = new_aor()
    aor.register(register("c1", 7, ("sip:alice@10.0.0.1", 3600)), NODE, T0)
    aor.register(register("c2", 1, ("sip:alice@10.0.0.2", 3600)), NODE, T0)
    aor.collect_events()
    with pytest.raises(OutOfOrderRequest):
        aor.register(RegisterRequest("c1", 7, wildcard=True), NODE, T0 + 1)
    aor.register(RegisterRequest("c1", 8, wildcard=True), NODE, T0 + 1)
    assert names(aor) == ["unregistered", "unregistered", "RegistrationTerminated"]


def test_wildcard_with_other_contacts_is_refused():
    aor = new_aor()
    request = RegisterRequest("c1", 1, (ContactUpdate("sip:a@h", 60),), wildcard=True)
    with pytest.raises(InvalidRequest, match="only Contact"):
        aor.register(request, NODE, T0)


def test_a_lapsed_binding_expires_before_the_next_command_and_a_register_starts_afresh():
    aor = new_aor()
    aor.register(register("c1", 1, ("sip:alice@10.0.0.1", 60)), NODE, T0)
    aor.collect_events()
    aor.register(register("c1", 1, ("sip:alice@10.0.0.1", 60)), NODE, T0 + 61)
    events = aor.collect_events()
    assert [getattr(e, "EVENT", type(e).__name__) for e in events] == [
        "expired", "RegistrationTerminated", "registered", "RegistrationActivated"]
    assert events[0].origin == "expiry" and events[2].origin == "register"


def test_expire_reports_only_due_bindings_oldest_first():
    aor = new_aor()
    aor.register(register("c1", 1, ("sip:a@10.0.0.2", 90), ("sip:a@10.0.0.1", 30),
                          ("sip:a@10.0.0.3", 3600)), NODE, T0)
    aor.collect_events()
    assert aor.expire(NODE, T0 + 100) == 2
    assert [e.binding.contact for e in aor.collect_events()] == ["sip:a@10.0.0.1", "sip:a@10.0.0.2"]
    assert aor.expire(NODE, T0 + 100) == 0


def test_an_instance_id_binding_is_replaced_when_the_contact_uri_changes():
    aor = new_aor()
    inst = '"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"'
    first = RegisterRequest("c1", 1, (ContactUpdate("sip:a@10.0.0.1", 600, instance=inst, reg_id=1),))
    moved = RegisterRequest("c1", 2, (ContactUpdate("sip:a@10.0.0.9", 600, instance=inst, reg_id=1),))
    aor.register(first, NODE, T0)
    aor.register(moved, NODE, T0 + 10)
    assert [b.contact for b in aor.live_bindings(T0 + 10)] == ["sip:a@10.0.0.9"]


def test_admin_create_shorten_and_the_three_removals():
    aor = new_aor()
    for n in (1, 2, 3, 4):
        aor.create_contact(ContactUpdate(f"sip:a@10.0.0.{n}", 600), f"adm{n}", NODE, "admin", T0)
    aor.shorten("sip:a@10.0.0.1", 30, NODE, "admin", T0 + 1)
    aor.deactivate("sip:a@10.0.0.2", NODE, "admin", T0 + 2)
    aor.probation("sip:a@10.0.0.3", 120, NODE, "admin", T0 + 3)
    aor.reject("sip:a@10.0.0.4", NODE, "admin", T0 + 4)
    events = [e for e in aor.collect_events() if hasattr(e, "EVENT")]
    assert [e.EVENT for e in events] == ["created"] * 4 + [
        "shortened", "deactivated", "probation", "rejected"]
    assert events[4].binding.expires == T0 + 31
    assert events[6].retry_after == 120
    assert all(e.origin == "admin" for e in events)
    assert [b.contact for b in aor.live_bindings(T0 + 5)] == ["sip:a@10.0.0.1"]


def test_admin_commands_refuse_what_the_machine_does_not_allow():
    aor = new_aor()
    aor.create_contact(ContactUpdate("sip:a@10.0.0.1", 600), "adm", NODE, "admin", T0)
    with pytest.raises(IllegalTransition, match="already bound"):
        aor.create_contact(ContactUpdate("sip:a@10.0.0.1", 60), "adm2", NODE, "admin", T0)
    with pytest.raises(UnknownContact):
        aor.deactivate("sip:nobody@10.0.0.1", NODE, "admin", T0)
    with pytest.raises(InvalidRequest, match="would not shorten"):
        aor.shorten("sip:a@10.0.0.1", 601, NODE, "admin", T0)
    with pytest.raises(UnknownContact):
        aor.reject("sip:a@10.0.0.1", NODE, "admin", T0 + 600)  # lapsed by then


def test_bindings_are_listed_by_descending_q():
    aor = new_aor()
    aor.register(RegisterRequest("c1", 1, (ContactUpdate("sip:a@h1", 60, q=0.1),
                                          ContactUpdate("sip:a@h2", 60),
                                          ContactUpdate("sip:a@h3", 60, q=0.5))), NODE, T0)
    assert [b.contact for b in aor.live_bindings(T0)] == ["sip:a@h2", "sip:a@h3", "sip:a@h1"]


def test_a_register_beyond_the_binding_limit_is_refused_and_changes_nothing():
    from domain import TooManyBindings

    aor = new_aor()
    aor.register(register("c1", 1, ("sip:a@h1", 600), ("sip:a@h2", 600)), NODE, T0, max_bindings=2)
    aor.collect_events()
    with pytest.raises(TooManyBindings, match="3 bindings"):
        aor.register(register("c2", 1, ("sip:a@h3", 600)), NODE, T0 + 1, max_bindings=2)
    assert names(aor) == []
    aor.register(register("c1", 2, ("sip:a@h1", 0), ("sip:a@h3", 600)), NODE, T0 + 2, max_bindings=2)
    assert sorted(b.contact for b in aor.live_bindings(T0 + 2)) == ["sip:a@h2", "sip:a@h3"]


def imported_binding(contact: str, callid: str, cseq: int, expires: float) -> Binding:
    return Binding(contact=contact, expires=expires, callid=callid, cseq=cseq,
                   registered_at=T0 - 100, q=0.5)


def test_an_imported_binding_is_created_once_with_origin_import():
    aor = new_aor()
    binding = imported_binding("sip:alice@10.0.0.1", "k1", 4, T0 + 600)
    assert aor.import_binding(binding, NODE, "import location ruid=r1", T0) is True
    events = aor.collect_events()
    assert [(getattr(e, "EVENT", type(e).__name__), e.origin) for e in events] == [
        ("created", "import"), ("RegistrationActivated", "import")]
    assert aor.import_binding(binding, NODE, "import location ruid=r1", T0 + 1) is False
    assert names(aor) == []  # the same registration again: nothing recorded
    with pytest.raises(IllegalTransition, match="by Call-ID k1 CSeq 4"):
        aor.import_binding(imported_binding("sip:alice@10.0.0.1", "k2", 1, T0 + 600), NODE,
                           "import location ruid=r2", T0 + 1)
    with pytest.raises(InvalidRequest, match="has expired"):
        aor.import_binding(imported_binding("sip:alice@10.0.0.2", "k3", 1, T0), NODE,
                           "import location ruid=r3", T0 + 1)
    assert names(aor) == [] and aor.live_bindings(T0 + 1) == [binding]


def test_remove_without_a_contact_ends_every_binding_with_the_event_asked():
    aor = new_aor()
    aor.register(register("c1", 1, ("sip:alice@10.0.0.1", 3600), ("sip:alice@10.0.0.2", 60)),
                 NODE, T0)
    aor.collect_events()
    removed = aor.remove(None, "rejected", NODE, "admin: contact rm", T0 + 1)
    assert sorted(b.contact for b in removed) == ["sip:alice@10.0.0.1", "sip:alice@10.0.0.2"]
    assert names(aor) == ["rejected", "rejected", "RegistrationTerminated"]
    assert aor.state == "terminated"
    with pytest.raises(UnknownContact, match="no active binding"):
        aor.remove(None, "deactivated", NODE, "admin: contact rm", T0 + 2)
    with pytest.raises(InvalidRequest, match="not 'expired'"):
        aor.remove(None, "expired", NODE, "admin: contact rm", T0 + 2)
