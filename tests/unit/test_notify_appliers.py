"""NOTIFY application in rfc and kamailio modes, on in-memory aggregates."""

from __future__ import annotations

import pytest

from domain import AddressOfRecord, InvalidUri, RegisterRequest, normalize_aor
from domain.binding import ContactUpdate
from domain.notify_kamailio import apply_kamailio
from domain.notify_rfc import apply_rfc
from domain.reginfo import ContactInfo, ReginfoDocument, RegistrationInfo, TempGruu
from domain.subscription import Subscription

T0 = 1_800_000_000.0
BOB = "sip:bob@example.com"


class Store:
    """AoR aggregates kept in memory, created on first use."""

    def __init__(self):
        self.aors: dict = {}

    def load(self, identity):
        if identity.id not in self.aors:
            self.aors[identity.id] = AddressOfRecord.initialize(identity, "notify", "n", "t", T0)
        return self.aors[identity.id]

    def live(self, aor: str = BOB, now: float = T0):
        return {b.contact: b for b in self.load(normalize_aor(aor)).live_bindings(now)}


def contact(cid: str, uri: str, state="active", event="registered", expires=3600, **kw) -> ContactInfo:
    return ContactInfo(uri=uri, id=cid, state=state, event=event, expires=expires,
                       callid=kw.pop("callid", f"{cid}@lab"), cseq=kw.pop("cseq", 1), **kw)


def doc(version, state, *contacts, aor=BOB, reg_state="active") -> ReginfoDocument:
    return ReginfoDocument(version, state, (RegistrationInfo(aor, "r", reg_state, tuple(contacts)),))


def rfc(store, sub, document, now=T0, cseq=None):
    return apply_rfc(document, sub, identify=normalize_aor, load=store.load, node="n", now=now,
                     default_expires=3600, cseq=cseq)


def kam(store, document, now=T0):
    result = apply_kamailio(document, identify=normalize_aor, load=store.load, node="n", now=now,
                            subscription="s1")
    return result


@pytest.fixture
def store():
    return Store()


@pytest.fixture
def sub():
    return Subscription.observe("s1", "n", T0)


C1, C2, C3 = "sip:bob@10.0.0.1", "sip:bob@10.0.0.2", "sip:bob@10.0.0.3"


def test_rfc_full_state_replaces_what_the_subscription_told(store, sub):
    assert rfc(store, sub, doc(0, "full", contact("c1", C1), contact("c2", C2), contact("c3", C3))).code == 1
    assert rfc(store, sub, doc(1, "full", contact("c1", C1, event="refreshed", cseq=2))).code == 1
    assert set(store.live()) == {C1}
    events = [e for e in store.load(normalize_aor(BOB)).collect_events() if hasattr(e, "EVENT")]
    assert [e.EVENT for e in events][-3:] == ["refreshed", "unregistered", "unregistered"]
    assert all(e.origin == "notify" for e in events)


def test_rfc_partial_merges_and_honours_contact_state_and_all_events(store, sub):
    rfc(store, sub, doc(0, "full", contact("c1", C1), contact("c2", C2), contact("c3", C3)))
    rfc(store, sub, doc(1, "partial", contact("c2", C2, state="terminated", event="probation",
                                              expires=0, retry_after=30)))
    rfc(store, sub, doc(2, "partial", contact("c3", C3, event="shortened", expires=60)))
    result = rfc(store, sub, doc(3, "partial", contact("c4", "sip:bob@10.0.0.4", state="terminated",
                                                       event="unregistered", expires=3600)))
    assert result.code == 1 and not result.gap
    live = store.live()
    assert set(live) == {C1, C3} and live[C3].expires == T0 + 60
    events = [e for e in store.load(normalize_aor(BOB)).collect_events() if hasattr(e, "EVENT")]
    assert [(e.EVENT, getattr(e, "retry_after", None)) for e in events[-2:]] == [
        ("probation", 30), ("shortened", None)]


def test_rfc_stale_and_duplicate_versions_are_discarded(store, sub):
    rfc(store, sub, doc(0, "full", contact("c1", C1)))
    rfc(store, sub, doc(1, "partial", contact("c2", C2)))
    for version in (1, 0):
        result = rfc(store, sub, doc(version, "partial", contact("c3", C3)))
        assert result.discarded and result.code == 1 and "stale" in result.reason
    assert set(store.live()) == {C1, C2}


def test_rfc_a_later_notify_with_a_full_document_resets_a_notifier_that_does_not_count(
        store, sub):
    # Kamailio 5.6 presence relays its publishers' versions: pua's default is version 0 in
    # every document, and a second publication restarts at 0. The NOTIFY's CSeq shows the
    # document is newer than the last one applied, so it becomes the new baseline.
    a, b = "sip:bob@192.0.2.1", "sip:bob@192.0.2.2"
    assert rfc(store, sub, doc(0, "full", contact("1", a)), cseq=1).code == 1
    result = rfc(store, sub, doc(0, "full", contact("1", a), contact("2", b)), cseq=2)
    assert not result.discarded and set(store.live()) == {a, b}
    result = rfc(store, sub, doc(0, "full", contact("2", b)), cseq=3)
    assert not result.discarded and set(store.live()) == {b}
    assert (sub.reginfo_version, sub.notify_cseq) == (0, 3)


def test_rfc_versions_still_rule_when_the_cseq_says_nothing_newer(store, sub):
    a, b = "sip:bob@192.0.2.1", "sip:bob@192.0.2.2"
    rfc(store, sub, doc(5, "full", contact("1", a)), cseq=10)
    # an older NOTIFY overtaken in the network: lower CSeq, not above our version
    assert rfc(store, sub, doc(4, "full", contact("2", b)), cseq=9).discarded
    # a partial document cannot be a baseline, whatever its CSeq
    assert rfc(store, sub, doc(5, "partial", contact("2", b)), cseq=11).discarded
    # without a CSeq (a bare body) versions alone decide
    assert rfc(store, sub, doc(5, "full", contact("2", b))).discarded
    assert set(store.live()) == {a}


def test_rfc_a_gap_is_applied_and_reported(store, sub):
    rfc(store, sub, doc(0, "full", contact("c1", C1)))
    result = rfc(store, sub, doc(5, "partial", contact("c2", C2)))
    assert result.gap and "re-SUBSCRIBE" in result.reason and set(store.live()) == {C1, C2}
    assert sub.needs_full_state
    rfc(store, sub, doc(6, "full", contact("c2", C2)))
    assert not sub.needs_full_state and set(store.live()) == {C2}


def test_rfc_terminated_and_init_registrations_end_the_subscriptions_bindings(store, sub):
    rfc(store, sub, doc(0, "full", contact("c1", C1), contact("c2", C2)))
    assert rfc(store, sub, doc(1, "partial", reg_state="terminated")).code == 2
    assert store.live() == {}
    assert rfc(store, sub, doc(2, "full", contact("c1", C1), reg_state="init")).code == 2


def test_rfc_stale_cseq_for_the_same_call_id_is_ignored(store, sub):
    rfc(store, sub, doc(0, "full", contact("c1", C1, cseq=5)))
    rfc(store, sub, doc(1, "partial", contact("c1", C1, event="refreshed", cseq=2, expires=1200)))
    [binding] = store.live().values()
    assert (binding.cseq, binding.expires) == (5, T0 + 3600)


def test_rfc_keeps_every_reported_field(store, sub):
    rich = contact("c1", C1, q=0.8, display_name="Bob", duration_registered=100,
                   unknown_params=(("+sip.instance", '"<urn:uuid:1>"'), ("reg-id", "2"), ("audio", "")),
                   pub_gruu="sip:bob@example.com;gr=urn:uuid:1",
                   temp_gruu=TempGruu("sip:tgruu.1@example.com;gr", 3), received="sip:192.0.2.1:5060",
                   path="<sip:p1.example.com;lr>,<sip:p2.example.com;lr>", user_agent="phone/1")
    rfc(store, sub, doc(0, "full", rich))
    [b] = store.live().values()
    assert (b.q, b.display_name, b.registered_at, b.instance, b.reg_id) == (
        0.8, "Bob", T0 - 100, '"<urn:uuid:1>"', 2)
    assert b.params == (("audio", None),)
    assert (b.pub_gruu, b.temp_gruu, b.temp_gruu_first_cseq) == (
        "sip:bob@example.com;gr=urn:uuid:1", "sip:tgruu.1@example.com;gr", 3)
    assert b.path == ("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>")
    assert (b.received, b.user_agent, b.subscription) == ("sip:192.0.2.1:5060", "phone/1", "s1")


def test_a_notify_never_wipes_the_routing_data_of_a_local_binding(store, sub):
    local = store.load(normalize_aor(BOB))
    local.register(RegisterRequest("loc", 1, (ContactUpdate(C1, 600, methods=("INVITE",), flags=4),),
                                   received="udp:198.51.100.7:40000", path=("<sip:edge;lr>",),
                                   socket="udp:127.0.0.1:5060", user_agent="ua"), "n", T0)
    rfc(store, sub, doc(0, "full", contact("c1", C1, event="refreshed", callid="other", expires=900)))
    [b] = store.live().values()
    assert (b.received, b.path, b.socket, b.methods, b.flags) == (
        "udp:198.51.100.7:40000", ("<sip:edge;lr>",), "udp:127.0.0.1:5060", ("INVITE",), 4)
    assert b.is_local and b.expires == T0 + 900
    rfc(store, sub, doc(1, "full"))  # omitted by full state, but it is ours: it stays
    assert set(store.live()) == {C1}


def test_rfc_refuses_a_document_with_an_unusable_aor_before_changing_anything(store, sub):
    bad = ReginfoDocument(0, "full", (RegistrationInfo(BOB, "r1", "active", (contact("c1", C1),)),
                                      RegistrationInfo("sip:example.com", "r2", "active", ())))
    with pytest.raises(InvalidUri):
        rfc(store, sub, bad)
    assert store.live() == {}


def test_kamailio_ignores_versions_and_state_and_skips_unknown_events(store):
    assert kam(store, doc(0, "full", contact("c1", C1), contact("c2", C2))).code == 1
    assert kam(store, doc(0, "full", contact("c1", C1, event="refreshed", cseq=2))).code == 1
    assert set(store.live()) == {C1, C2}  # full state omitted c2, Kamailio keeps it
    result = kam(store, doc(1, "partial", contact("c1", C1, state="terminated", event="deactivated", expires=0)))
    assert result.code == -1 and "deactivated" in result.reason
    kam(store, doc(2, "partial", contact("c4", "sip:bob@10.0.0.4", state="terminated",
                                         event="unregistered", expires=3600)))
    assert "sip:bob@10.0.0.4" in store.live()  # contact state ignored, as in Kamailio


def test_kamailio_result_codes(store):
    ghost = "sip:ghost@example.com"
    assert kam(store, doc(0, "partial", contact("g", "sip:g@h", state="terminated",
                                                event="unregistered", expires=0), aor=ghost)).code == 2
    assert kam(store, doc(0, "full", aor="sip:nobody@example.com", reg_state="terminated")).code == -1
    kam(store, doc(0, "full", contact("c1", C1)))
    assert kam(store, doc(1, "partial", aor=BOB, reg_state="terminated")).code == 2
    assert kam(store, doc(0, "full", contact("l1", "sip:leo@h", expires=0), aor="sip:leo@example.com")).code == 2
    assert kam(store, doc(0, "full", contact("x", "sip:x@h", expires=None), aor="sip:x@example.com")).code == -1
    no_ids = ContactInfo(uri="sip:uma@h", state="active", event="registered", expires=60)
    assert kam(store, doc(0, "full", no_ids, aor="sip:uma@example.com")).code == -1


def test_kamailio_stale_cseq_does_not_duplicate_the_binding(store):
    kam(store, doc(0, "full", contact("f1", C1, cseq=5)))
    kam(store, doc(1, "partial", contact("f1", C1, event="refreshed", cseq=2, expires=1200)))
    [binding] = store.live().values()
    assert binding.cseq == 5
