"""The document a registrar PUBLISHes after one change of an AoR (RFC 3680 5.3-5.5)."""

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.binding import Binding
from domain.errors import InvalidUri
from domain.publication_document import (
    ENDED_EVENTS, LIVE_EVENTS, contact_id, publication_document, publication_expires,
    registration_id, resource_uri,
)
from domain.reginfo import ContactInfo, ReginfoDocument, RegistrationInfo, TempGruu
from sip_gateway.reginfo import build_reginfo, parse_reginfo, validate_reginfo

NOW = 1_700_000_000.25
AOR = "sip:alice@example.org"
PHONE = Binding("sip:alice@192.0.2.10:5060", NOW + 3600, "a84b4c76e66710", 314, NOW)
SOFT = Binding("sip:alice@192.0.2.20:5062;transport=tcp", NOW + 1800, "9f3e@192.0.2.20", 1,
               NOW, q=0.5)


def document(live=(), events=None, ended=(), version=0, now=NOW) -> ReginfoDocument:
    events = {b.key: "registered" for b in live} if events is None else events
    return publication_document(AOR, live, events, ended, version, now)


def registration(doc: ReginfoDocument) -> RegistrationInfo:
    assert doc.state == "full" and len(doc.registrations) == 1
    return doc.registrations[0]


def contact(doc: ReginfoDocument, binding: Binding) -> ContactInfo:
    [found] = [c for c in registration(doc).contacts if c.uri == binding.contact]
    return found


def summary(doc: ReginfoDocument) -> list[tuple]:
    return [(c.uri, c.state, c.event, c.expires) for c in registration(doc).contacts]


# Stories ------------------------------------------------------------------------------------

def test_first_register_publishes_one_active_registered_contact():
    doc = document([PHONE], {PHONE.key: "registered"}, version=7)
    assert doc == ReginfoDocument(7, "full", (RegistrationInfo(
        AOR, registration_id(AOR), "active", (ContactInfo(
            uri=PHONE.contact, id=contact_id(AOR, PHONE.key), state="active",
            event="registered", expires=3600, callid="a84b4c76e66710", cseq=314,
            duration_registered=0),)),))


def test_a_refresh_is_reported_refreshed_with_the_time_registered_so_far():
    later = NOW + 1200.75
    refreshed = dataclasses.replace(PHONE, expires=later + 3600, cseq=315)
    doc = document([refreshed], {PHONE.key: "refreshed"}, version=1, now=later)
    assert summary(doc) == [(PHONE.contact, "active", "refreshed", 3600)]
    assert contact(doc, PHONE).duration_registered == 1200
    assert contact(doc, PHONE).cseq == 315


def test_a_second_device_adds_a_contact_and_the_first_keeps_its_event():
    doc = document([SOFT, PHONE], {PHONE.key: "refreshed", SOFT.key: "registered"})
    assert registration(doc).state == "active"
    assert summary(doc) == [(PHONE.contact, "active", "refreshed", 3600),  # no q: 1.0
                            (SOFT.contact, "active", "registered", 1800)]
    assert contact(doc, SOFT).q == 0.5


def test_de_registering_one_device_reports_it_terminated_once_after_the_live_one():
    gone = SOFT.with_expires(NOW)
    doc = document([PHONE], {PHONE.key: "registered"}, [("unregistered", gone, None)])
    assert registration(doc).state == "active"
    assert summary(doc) == [(PHONE.contact, "active", "registered", 3600),
                            (SOFT.contact, "terminated", "unregistered", 0)]
    assert contact(doc, SOFT).id == contact_id(AOR, SOFT.key)
    assert contact(doc, SOFT).callid == SOFT.callid


def test_contact_star_terminates_the_registration_and_every_contact_in_one_document():
    ended = [("unregistered", PHONE.with_expires(NOW), None),
             ("unregistered", SOFT.with_expires(NOW), None)]
    doc = document([], {}, ended)
    assert registration(doc).state == "terminated"
    assert summary(doc) == [(PHONE.contact, "terminated", "unregistered", 0),
                            (SOFT.contact, "terminated", "unregistered", 0)]


def test_expiry_of_the_last_binding_is_reported_expired():
    doc = document([], {}, [("expired", PHONE, None)], now=PHONE.expires + 5)
    assert registration(doc).state == "terminated"
    assert summary(doc) == [(PHONE.contact, "terminated", "expired", 0)]
    assert contact(doc, PHONE).duration_registered == 3605


def test_probation_carries_retry_after_and_other_endings_do_not():
    doc = document([], {}, [("probation", PHONE, 600), ("deactivated", SOFT, 30)])
    assert contact(doc, PHONE).retry_after == 600
    assert contact(doc, SOFT).retry_after is None
    with pytest.raises(ValueError, match="retry-after"):
        document([], {}, [("probation", PHONE, None)])


def test_administrative_events_are_reported_as_given():
    shortened = PHONE.with_expires(NOW + 60)
    doc = document([shortened, SOFT], {PHONE.key: "shortened", SOFT.key: "created"},
                   [("rejected", Binding("sip:mallory@203.0.113.9", NOW, "x", 1, NOW), None)])
    assert summary(doc) == [(PHONE.contact, "active", "shortened", 60),
                            (SOFT.contact, "active", "created", 1800),
                            ("sip:mallory@203.0.113.9", "terminated", "rejected", 0)]


def test_gruus_instance_reg_id_and_contact_parameters():
    outbound = Binding(
        "sip:alice@192.0.2.30;ob", NOW + 600, "c@h", 9, NOW - 10, q=0.7,
        instance='"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"', reg_id=1,
        display_name="Alice's desk",
        params=(("+sip.instance", '"<urn:uuid:dup>"'), ("audio", None), ("+g.oma", '"x"')),
        pub_gruu="sip:alice@example.org;gr=urn:uuid:00000000-0000-1000-8000-000A95A0E128",
        temp_gruu="sip:tgruu.7hs==jd7vnzga5w7fajsc7-ajd6fabz0f8g5@example.org;gr",
        temp_gruu_first_cseq=1)
    found = contact(document([outbound]), outbound)
    assert found.unknown_params == (
        ("+sip.instance", '"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"'),
        ("reg-id", "1"), ("audio", ""), ("+g.oma", '"x"'))
    assert found.display_name == "Alice's desk"
    assert found.pub_gruu == outbound.pub_gruu
    assert found.temp_gruu == TempGruu(outbound.temp_gruu, 1)
    assert found.duration_registered == 10


def test_contacts_are_ordered_by_q_then_uri_and_ended_ones_come_last():
    def at(uri, q=None):
        return Binding(uri, NOW + 100, "c", 1, NOW, q=q)

    live = [at("sip:d@h", 0.1), at("sip:c@h"), at("sip:b@h", 0.9), at("sip:a@h", 0.9)]
    ended = [("expired", at("sip:z@h", 1.0), None), ("expired", at("sip:y@h", 0.2), None)]
    doc = document(live, ended=ended)
    assert [c.uri for c in registration(doc).contacts] == [
        "sip:c@h", "sip:a@h", "sip:b@h", "sip:d@h", "sip:z@h", "sip:y@h"]


def test_a_binding_that_lapsed_and_registered_again_in_one_change_is_reported_live():
    again = dataclasses.replace(PHONE, expires=NOW + 3600, callid="new")
    doc = document([again], {PHONE.key: "registered"}, [("expired", PHONE, None)])
    assert summary(doc) == [(PHONE.contact, "active", "registered", 3600)]


def test_of_several_endings_of_one_binding_the_last_is_reported():
    doc = document([], {}, [("expired", PHONE, None), ("unregistered", PHONE, None)])
    assert summary(doc) == [(PHONE.contact, "terminated", "unregistered", 0)]


def test_an_aor_with_nothing_to_report_is_init():
    assert registration(document([], {}, [])).state == "init"


# Ids ----------------------------------------------------------------------------------------

def test_ids_are_stable_across_calls_processes_and_nodes():
    assert registration_id(AOR) == "fff2896de38b28f1"  # fixed forever: subscribers match it
    assert contact_id(AOR, "uri|x") == "7cf7af17550594e1"
    assert document([PHONE]) == document([PHONE])
    assert registration_id(AOR) != registration_id("sip:bob@example.org")
    assert contact_id(AOR, PHONE.key) != contact_id(AOR, SOFT.key)
    assert contact_id(AOR, PHONE.key) != contact_id("sip:bob@example.org", PHONE.key)
    assert contact_id("sip:a@h", "b") != contact_id("sip:a@hb", "")


# Lifetimes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("left, expected", [(3600, 3600), (3599.2, 3600), (0.2, 1),
                                            (1e-9, 1), (-5, 1)])
def test_expires_is_the_lifetime_left_rounded_up_and_at_least_one(left, expected):
    binding = PHONE.with_expires(NOW + left)
    assert contact(document([binding]), binding).expires == expected


@pytest.mark.parametrize("now", [2**30 - 10.1, 2**31 - 30.3])  # near a binade edge
def test_float_noise_in_absolute_times_does_not_add_or_lose_a_second(now):
    binding = Binding("sip:a@h", now + 3600, "c", 1, registered_at=(now + 30) - 90)
    assert binding.expires - now != 3600  # the noise is real
    doc = publication_document(AOR, [binding], {binding.key: "registered"}, [], 0, now)
    assert summary(doc)[0][3] == 3600
    assert registration(doc).contacts[0].duration_registered == 60
    assert publication_expires([binding], now) == 3600


def test_publication_expires_is_the_longest_lifetime_left_else_the_fallback():
    assert publication_expires([PHONE, SOFT], NOW) == 3600
    assert publication_expires([SOFT.with_expires(NOW + 10.1)], NOW) == 11
    assert publication_expires([PHONE], PHONE.expires) == 3600  # lapsed: not live
    assert publication_expires([], NOW) == 3600
    assert publication_expires([], NOW, fallback=120) == 120
    with pytest.raises(ValueError):
        publication_expires([], NOW, fallback=-1)


# Resource URI -------------------------------------------------------------------------------

@pytest.mark.parametrize("aor, default_domain, expected", [
    ("sip:alice@example.org", None, "sip:alice@example.org"),
    ("SIP:Alice@Example.ORG:5060;transport=tcp", None, "sip:Alice@example.org"),
    ("<sips:bob@example.org:5061>", "example.com", "sips:bob@example.org"),
    ("sip:bob@example.org:5070", None, "sip:bob@example.org:5070"),
    ("alice@example.org", None, "sip:alice@example.org"),
    ("alice", "Example.ORG", "sip:alice@example.org"),
    ("+4930123", "example.org", "sip:+4930123@example.org"),
    ("tel:+49-30-123", "example.org", "sip:+4930123@example.org;user=phone"),
    ("tel:+49-30-123", None, "tel:+4930123"),
    ("tel:1234;phone-context=example.com", "example.org",
     "sip:1234;phone-context=example.com@example.org;user=phone"),
])
def test_the_resource_is_the_canonical_aor(aor, default_domain, expected):
    assert resource_uri(aor, default_domain) == expected


def test_an_aor_without_host_needs_a_default_domain():
    with pytest.raises(InvalidUri):
        resource_uri("alice", None)


# Misuse -------------------------------------------------------------------------------------

MISUSES = [
    (dict(events={PHONE.key: "bogus"}), "unknown contact event 'bogus'"),
    (dict(events={PHONE.key: "expired"}), "terminates a contact"),
    (dict(events={}), "no event"),
    (dict(ended=[("registered", SOFT, None)]), "leaves a contact active"),
    (dict(ended=[("gone", SOFT, None)]), "unknown contact event 'gone'"),
    (dict(ended=[("probation", SOFT, -1)]), "retry-after"),
    (dict(live=[PHONE, dataclasses.replace(PHONE, contact="sip:alice@192.0.2.10")]),
     "share the key"),
    (dict(version=-1), "version"),
    (dict(version=2**32), "version"),
    (dict(version=True), "version"),
    (dict(now=float("nan")), "now"),
    (dict(live=[dataclasses.replace(PHONE, q=1.5)]), "q 1.5"),
    (dict(live=[dataclasses.replace(PHONE, cseq=-1)]), "cseq"),
    (dict(live=[dataclasses.replace(PHONE, expires=float("inf"))]), "expires"),
    (dict(live=[dataclasses.replace(PHONE, callid="bell\x07")]), "callid"),
    (dict(live=[dataclasses.replace(PHONE, params=(("x", "\x00"),))]), "parameter 'x'"),
    (dict(live=[dataclasses.replace(PHONE, temp_gruu="sip:t@h;gr")]), "first-cseq"),
    (dict(live=[dataclasses.replace(PHONE, pub_gruu=" ")]), "pub-gruu"),
    (dict(live=[dataclasses.replace(PHONE, expires=NOW + 2**33)]), "left"),
]


@pytest.mark.parametrize("change, reason", MISUSES)
def test_inputs_that_cannot_make_a_valid_document_are_refused(change, reason):
    arguments = {"live": [PHONE], "events": None, **change}
    if arguments["events"] is None:
        arguments["events"] = {b.key: "registered" for b in arguments["live"]}
    with pytest.raises(ValueError, match=reason):
        document(**arguments)


# Through the codec --------------------------------------------------------------------------

def test_a_story_document_is_schema_valid_and_reads_back_the_same():
    outbound = Binding("sip:alice@192.0.2.30;ob", NOW + 600, "c@h", 9, NOW, q=0.7,
                       instance='"<urn:uuid:1>"', reg_id=1, params=(("audio", None),),
                       pub_gruu="sip:alice@example.org;gr=urn:uuid:1",
                       temp_gruu="sip:tgruu.1@example.org;gr", temp_gruu_first_cseq=9)
    doc = document([PHONE, outbound], {PHONE.key: "refreshed", outbound.key: "registered"},
                   [("probation", SOFT, 300)], version=3)
    body = build_reginfo(doc)
    validate_reginfo(body)
    assert parse_reginfo(body) == doc
    assert b'<contact id="%s" state="terminated" event="probation" expires="0" ' % (
        contact_id(AOR, SOFT.key).encode()) in body
    assert b'<unknown-param name="+sip.instance">"&lt;urn:uuid:1&gt;"</unknown-param>' in body


xml_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn"),
                                 include_characters="\t\n\r"), max_size=10)
tokens = st.text("abcdefghijklmnopqrstuvwxyz0123456789.-", min_size=1, max_size=8)
hosts = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
seconds = st.floats(-100, 100_000, allow_nan=False)


@st.composite
def bindings(draw, index: int) -> Binding:
    """A binding with a unique URI (`index`), and a unique key whichever identity it has."""
    contact = f"sip:{draw(tokens)}{index}@{draw(hosts)}"
    instance = draw(st.none() | xml_text.filter(bool).map(lambda text: f"{text}{index}"))
    temp_gruu = draw(st.none() | st.tuples(tokens, st.integers(0, 2**31 - 1)))
    return Binding(
        contact=contact + draw(st.sampled_from(["", ";transport=tcp", ";ob"])),
        expires=NOW + draw(seconds), callid=draw(xml_text), cseq=draw(st.integers(0, 2**31 - 1)),
        registered_at=NOW - draw(seconds), q=draw(st.none() | st.floats(0, 1)),
        instance=instance, reg_id=draw(st.none() | st.integers(1, 2**31 - 1)),
        display_name=draw(st.none() | xml_text),
        params=tuple(draw(st.lists(st.tuples(xml_text, st.none() | xml_text), max_size=3))),
        pub_gruu=draw(st.none() | tokens.map(lambda t: f"sip:{t}@example.org;gr")),
        temp_gruu=temp_gruu and f"sip:{temp_gruu[0]}@example.org;gr",
        temp_gruu_first_cseq=temp_gruu and temp_gruu[1])


@st.composite
def changes(draw):
    count = draw(st.integers(0, 6))
    everyone = [draw(bindings(index)) for index in range(count)]
    split = draw(st.integers(0, count))
    live, gone = everyone[:split], everyone[split:]
    events = {b.key: draw(st.sampled_from(LIVE_EVENTS)) for b in live}
    ended = []
    for binding in gone:
        event = draw(st.sampled_from(ENDED_EVENTS))
        retry_after = draw(st.integers(0, 2**32 - 1)) if event == "probation" else None
        ended.append((event, binding, retry_after))
    return live, events, ended


@settings(max_examples=200, deadline=None)
@given(changes(), st.integers(0, 2**32 - 1), tokens)
def test_every_document_is_schema_valid_and_reads_back_the_same(change, version, user):
    live, events, ended = change
    resource = f"sip:{user}@example.org"
    doc = publication_document(resource, live, events, ended, version, NOW)
    body = build_reginfo(doc)
    validate_reginfo(body)
    assert parse_reginfo(body) == doc
    reg = registration(doc)
    assert [c.state for c in reg.contacts] == ["active"] * len(live) + ["terminated"] * len(ended)
    assert len({c.id for c in reg.contacts}) == len(reg.contacts)
    assert all(c.expires >= 1 for c in reg.contacts if c.state == "active")
    assert reg.state == ("active" if live else "terminated" if ended else "init")
