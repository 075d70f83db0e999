"""The RFC 3903 publication of one resource as short stories on a fake clock, and its PUBLISH."""

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from sip_gateway.client.publication import (
    FAILED_WAITING,
    PUBLICATION_MACHINE,
    PUBLISHED,
    PUBLISHING,
    REFRESHING,
    REMOVING,
    UNPUBLISHED,
    Backoff,
    Publication,
)
from sip_gateway.client.publication_request import (
    PublicationMisuse,
    PublishKind,
    PublishPlan,
    build_publish,
    publish_response_fields,
)
from sip_gateway.sip import Headers, SipRequest, SipResponse, parse_message

T0 = 1_800_000_000.0  # the fake clock's start; every `now` is T0 + seconds
RESOURCE = "sip:alice@example.com"
FIXTURES = Path(__file__).parents[1] / "fixtures/kamailio-5.6/messages/A-register-publish"
DOC_A, DOC_B, DOC_C = b"<reginfo A/>", b"<reginfo B/>", b"<reginfo C/>"


def publication(random=lambda: 0.5, **backoff):
    return Publication(RESOURCE, random=random, backoff=Backoff(**backoff) if backoff else None)


def answer(pub, status, at, *, etag=None, expires=None, min_expires=None):
    pub.on_response(status, etag=etag, expires=expires, min_expires=min_expires, now=T0 + at)


def published(body=DOC_A, expires=3600, etag="e1", at=0.0):
    """A publication whose initial PUBLISH of `body` was accepted at `at`."""
    pub = publication()
    pub.want(body, expires, T0 + at)
    assert pub.next_request(T0 + at).kind is PublishKind.INITIAL
    answer(pub, 200, at, etag=etag, expires=expires)
    return pub


# --- the lifecycle ---

def test_initial_then_200_with_etag_then_a_modify_carries_sip_if_match():
    pub = publication()
    pub.want(DOC_A, 3600, T0)
    assert pub.next_deadline() == T0
    plan = pub.next_request(T0)
    assert plan == PublishPlan(PublishKind.INITIAL, 3600, DOC_A, None)
    assert pub.state == PUBLISHING and pub.in_flight == plan
    assert pub.next_request(T0) is None  # one request at a time
    answer(pub, 200, 0.2, etag="e1", expires=3600)
    assert (pub.state, pub.etag, pub.expires_at) == (PUBLISHED, "e1", T0 + 3600)
    assert pub.next_request(T0 + 1) is None

    pub.want(DOC_B, 3600, T0 + 10)
    assert pub.next_request(T0 + 10) == PublishPlan(PublishKind.MODIFY, 3600, DOC_B, "e1")
    answer(pub, 200, 10.1, etag="e2", expires=3600)
    assert (pub.etag, pub.expires_at, pub.in_flight) == ("e2", T0 + 3610, None)


def test_the_same_document_again_sends_nothing():
    pub = published()
    pub.want(DOC_A, 3600, T0 + 5)
    assert pub.next_request(T0 + 5) is None


def test_refresh_before_expiry_without_body():
    pub = published(expires=3600)
    assert pub.next_deadline() == T0 + 3600 - 360  # 10% of the lifetime
    assert pub.next_request(T0 + 3239) is None
    plan = pub.next_request(T0 + 3240)
    assert plan == PublishPlan(PublishKind.REFRESH, 3600, None, "e1")
    assert pub.state == REFRESHING
    answer(pub, 200, 3240.5, etag="e2", expires=1800)  # a shorter grant counts
    assert (pub.etag, pub.expires_at) == ("e2", T0 + 3240 + 1800)
    assert pub.next_deadline() == T0 + 3240 + 1800 - 180


@pytest.mark.parametrize("granted, refresh_after", [(30, 25), (6, 3), (100, 90), (7200, 6480)])
def test_the_refresh_margin_is_at_least_five_seconds_and_at_most_half(granted, refresh_after):
    pub = published(expires=granted)
    assert pub.next_deadline() == T0 + refresh_after


def test_a_changed_lifetime_alone_is_sent_as_a_refresh():
    pub = published(expires=3600)
    pub.want(DOC_A, 600, T0 + 5)
    assert pub.next_request(T0 + 5) == PublishPlan(PublishKind.REFRESH, 600, None, "e1")


def test_an_expired_etag_is_forgotten_and_the_body_published_afresh():
    pub = published(expires=60)
    plan = pub.next_request(T0 + 61)  # the owner slept through the refresh
    assert plan == PublishPlan(PublishKind.INITIAL, 60, DOC_A, None)


def test_412_drops_the_etag_and_publishes_the_latest_body_at_once():
    pub = published()
    pub.want(DOC_B, 3600, T0 + 5)
    assert pub.next_request(T0 + 5).kind is PublishKind.MODIFY
    pub.want(DOC_C, 3600, T0 + 6)
    answer(pub, 412, 6)
    assert (pub.state, pub.etag, pub.failures) == (UNPUBLISHED, None, 0)
    assert pub.next_deadline() == T0 + 6
    assert pub.next_request(T0 + 6) == PublishPlan(PublishKind.INITIAL, 3600, DOC_C, None)


def test_412_to_a_refresh_starts_over_with_the_full_body():
    pub = published(expires=100)
    assert pub.next_request(T0 + 95).kind is PublishKind.REFRESH
    answer(pub, 412, 95)
    assert pub.next_request(T0 + 95) == PublishPlan(PublishKind.INITIAL, 100, DOC_A, None)


def test_423_retries_at_once_with_min_expires_and_keeps_it_as_the_floor():
    pub = publication()
    pub.want(DOC_A, 60, T0)
    assert pub.next_request(T0).expires == 60
    answer(pub, 423, 0.1, min_expires=600)
    assert (pub.state, pub.failures) == (UNPUBLISHED, 0)
    assert pub.next_request(T0 + 0.1) == PublishPlan(PublishKind.INITIAL, 600, DOC_A, None)
    answer(pub, 200, 0.2, etag="e1", expires=600)
    pub.want(DOC_B, 60, T0 + 10)
    assert pub.next_request(T0 + 10).expires == 600


def test_423_on_a_modify_retries_the_modify():
    pub = published(expires=60)
    pub.want(DOC_B, 60, T0 + 1)
    pub.next_request(T0 + 1)
    answer(pub, 423, 1, min_expires=300)
    assert pub.state == PUBLISHED
    assert pub.next_request(T0 + 1) == PublishPlan(PublishKind.MODIFY, 300, DOC_B, "e1")


@pytest.mark.parametrize("min_expires", [None, 60, 30])
def test_a_423_without_a_higher_min_expires_is_a_failure(min_expires):
    pub = publication()
    pub.want(DOC_A, 60, T0)
    pub.next_request(T0)
    answer(pub, 423, 0, min_expires=min_expires)
    assert (pub.state, pub.failures, pub.retry_at) == (FAILED_WAITING, 1, T0 + 0.5)


def test_503_backs_off_exponentially_with_full_jitter_and_keeps_the_desired_state():
    draws = iter([1.0, 0.5, 0.25, 1.0])
    pub = publication(random=lambda: next(draws))
    pub.want(DOC_A, 3600, T0)
    now, delays = T0, []
    for _ in range(4):
        assert pub.next_request(now) is not None
        pub.on_response(503, etag=None, expires=None, min_expires=None, now=now)
        delays.append(pub.retry_at - now)
        assert pub.next_request(now) is None  # waiting out the back-off
        assert pub.next_deadline() == pub.retry_at
        now = pub.retry_at
        if len(delays) == 2:
            pub.want(DOC_B, 3600, now - 0.1)  # wanted while backing off
    assert delays == [1.0, 1.0, 1.0, 8.0]  # 1*1, 0.5*2, 0.25*4, 1*8
    assert (pub.state, pub.failures, pub.last_error) == (FAILED_WAITING, 4, "503 to initial")
    plan = pub.next_request(now)
    assert plan == PublishPlan(PublishKind.INITIAL, 3600, DOC_B, None)
    answer(pub, 200, now - T0, etag="e1", expires=3600)
    assert (pub.failures, pub.last_error, pub.retry_at) == (0, None, None)


@given(st.integers(min_value=1, max_value=40), st.floats(min_value=0, max_value=1))
def test_the_back_off_stays_within_its_jitter_bounds(failures, draw):
    delay = Backoff().delay(failures, lambda: draw)
    assert 0 <= delay <= min(300.0, 2.0 ** (failures - 1))
    assert Backoff().ceiling(failures) == min(300.0, 2.0 ** (failures - 1))


def test_a_failed_modify_keeps_the_etag_but_481_loses_it():
    pub = published()
    pub.want(DOC_B, 3600, T0 + 1)
    pub.next_request(T0 + 1)
    answer(pub, 500, 1)
    assert pub.etag == "e1"
    assert pub.next_request(T0 + 1.5).kind is PublishKind.MODIFY
    answer(pub, 481, 2)
    assert (pub.etag, pub.failures) == (None, 2)
    assert pub.next_request(T0 + 2 + 1.0) == PublishPlan(PublishKind.INITIAL, 3600, DOC_B, None)


def test_a_newer_document_while_in_flight_is_sent_next_and_one_in_between_skipped():
    pub = publication()
    pub.want(DOC_A, 3600, T0)
    pub.next_request(T0)
    pub.want(DOC_B, 3600, T0 + 0.1)
    pub.want(DOC_C, 3600, T0 + 0.2)
    assert pub.next_request(T0 + 0.2) is None
    assert pub.next_deadline() is None  # the response drives it
    answer(pub, 200, 0.3, etag="e1", expires=3600)
    assert pub.next_request(T0 + 0.3) == PublishPlan(PublishKind.MODIFY, 3600, DOC_C, "e1")
    answer(pub, 200, 0.4, etag="e2", expires=3600)
    assert pub.next_request(T0 + 0.4) is None


def test_want_removed_with_an_etag_removes_with_expires_0_then_forgets():
    pub = published()
    pub.want(DOC_B, 3600, T0 + 5)  # the final document first
    pub.want_removed(T0 + 5)
    assert pub.next_request(T0 + 5) == PublishPlan(PublishKind.MODIFY, 3600, DOC_B, "e1")
    answer(pub, 200, 5, etag="e2", expires=3600)
    assert pub.next_request(T0 + 5) == PublishPlan(PublishKind.REMOVE, 0, None, "e2")
    assert pub.state == REMOVING
    answer(pub, 200, 5.1, etag="e3", expires=0)
    assert (pub.state, pub.etag, pub.expires_at, pub.forgotten) == (UNPUBLISHED, None, None, True)
    assert pub.next_request(T0 + 10_000) is None and pub.next_deadline() is None


def test_want_removed_without_an_etag_sends_nothing():
    pub = publication()
    pub.want_removed(T0)
    assert pub.forgotten and pub.next_request(T0) is None and pub.next_deadline() is None


def test_want_removed_during_the_initial_removes_after_its_200():
    pub = publication()
    pub.want(DOC_A, 3600, T0)
    pub.next_request(T0)
    pub.want_removed(T0 + 0.1)
    answer(pub, 200, 0.2, etag="e1", expires=3600)
    assert pub.next_request(T0 + 0.2) == PublishPlan(PublishKind.REMOVE, 0, None, "e1")
    answer(pub, 200, 0.3)  # a removal's 2xx needs no SIP-ETag
    assert pub.forgotten


def test_a_document_wanted_during_the_removal_is_published_afresh():
    pub = published()
    pub.want_removed(T0 + 1)
    pub.next_request(T0 + 1)
    pub.want(DOC_B, 3600, T0 + 1.1)
    answer(pub, 200, 1.2)
    assert pub.next_request(T0 + 1.2) == PublishPlan(PublishKind.INITIAL, 3600, DOC_B, None)


def test_the_final_document_goes_out_even_when_the_etag_expired_meanwhile():
    pub = published(expires=60)
    pub.want(DOC_B, 60, T0 + 1)
    pub.want_removed(T0 + 1)
    pub.next_request(T0 + 1)
    answer(pub, 503, 1)
    assert pub.next_request(T0 + 61) == PublishPlan(PublishKind.INITIAL, 60, DOC_B, None)
    answer(pub, 200, 61, etag="e2", expires=60)
    assert pub.next_request(T0 + 61) == PublishPlan(PublishKind.REMOVE, 0, None, "e2")


def test_an_expired_publication_that_was_to_be_removed_is_just_forgotten():
    pub = published(expires=60)
    pub.want_removed(T0 + 1)
    pub.next_request(T0 + 1)
    answer(pub, 503, 1)
    assert pub.next_request(T0 + 61) is None and pub.forgotten


@pytest.mark.parametrize("status", [412, 481])
def test_a_removal_answered_no_such_publication_is_done(status):
    pub = published()
    pub.want_removed(T0 + 1)
    pub.next_request(T0 + 1)
    answer(pub, status, 1)
    assert pub.forgotten and pub.failures == 0


def test_a_failed_removal_is_retried_after_the_back_off():
    pub = published()
    pub.want_removed(T0 + 1)
    pub.next_request(T0 + 1)
    answer(pub, 503, 1)
    assert pub.next_request(T0 + 1.4) is None
    assert pub.next_request(T0 + 1.5) == PublishPlan(PublishKind.REMOVE, 0, None, "e1")


def test_a_timeout_is_a_failure_like_408():
    pub = published()
    pub.want(DOC_B, 3600, T0 + 1)
    pub.next_request(T0 + 1)
    pub.on_timeout(T0 + 33)
    assert (pub.state, pub.failures, pub.etag) == (FAILED_WAITING, 1, "e1")
    assert pub.last_error == "timeout of modify"
    assert pub.next_request(T0 + 33.5) == PublishPlan(PublishKind.MODIFY, 3600, DOC_B, "e1")


@pytest.mark.parametrize("etag", [None, "", "not a token"])
def test_a_2xx_without_a_usable_sip_etag_is_a_failure(etag):
    pub = published()
    pub.want(DOC_B, 3600, T0 + 1)
    pub.next_request(T0 + 1)
    answer(pub, 200, 1, etag=etag, expires=3600)
    assert (pub.state, pub.failures, pub.etag) == (FAILED_WAITING, 1, None)
    assert "SIP-ETag" in pub.last_error
    assert pub.next_request(T0 + 1.5) == PublishPlan(PublishKind.INITIAL, 3600, DOC_B, None)


def test_a_2xx_without_expires_grants_what_was_asked_and_with_0_is_a_failure():
    pub = publication()
    pub.want(DOC_A, 120, T0)
    pub.next_request(T0)
    answer(pub, 200, 1, etag="e1")
    assert pub.expires_at == T0 + 120  # counted from when the request left
    pub.want(DOC_B, 120, T0 + 2)
    pub.next_request(T0 + 2)
    answer(pub, 200, 2, etag="e2", expires=0)
    assert (pub.state, pub.etag, pub.failures) == (FAILED_WAITING, None, 1)


def test_provisional_responses_change_nothing():
    pub = publication()
    pub.want(DOC_A, 3600, T0)
    plan = pub.next_request(T0)
    answer(pub, 100, 0.1)
    assert pub.in_flight == plan and pub.state == PUBLISHING


def test_misuse_is_a_typed_error():
    pub = publication()
    with pytest.raises(PublicationMisuse, match="no PUBLISH in flight"):
        answer(pub, 200, 0, etag="e1")
    with pytest.raises(PublicationMisuse, match="no PUBLISH in flight"):
        pub.on_timeout(T0)
    with pytest.raises(PublicationMisuse):
        pub.want(DOC_A, 0, T0)
    with pytest.raises(PublicationMisuse):
        pub.want(b"", 60, T0)
    with pytest.raises(PublicationMisuse):
        PublishPlan(PublishKind.REFRESH, 60, None, None)


def test_the_table_names_seven_states_and_every_send_leaves_an_idle_state():
    states = {s for s, _ in PUBLICATION_MACHINE} | set(PUBLICATION_MACHINE.values())
    assert states == {"unpublished", "publishing", "published", "modifying", "refreshing",
                      "removing", "failed-waiting"}
    sends = {(s, e) for s, e in PUBLICATION_MACHINE if e.startswith("send_")}
    assert {s for s, _ in sends} == {UNPUBLISHED, PUBLISHED, FAILED_WAITING}


# --- random stories ---

class RandomStories(RuleBasedStateMachine):
    """Random wants, responses and timeouts; every plan checked, the newest wish wins at the end."""

    def __init__(self):
        super().__init__()
        self.pub = publication(random=lambda: self.jitter)
        self.jitter = 0.5
        self.now = T0
        self.tags = itertools.count()
        self.issued: set[str] = set()
        self.newest: bytes | None = None

    @rule(n=st.integers(0, 5), expires=st.integers(1, 7200))
    def want(self, n, expires):
        self.newest = b"<reginfo n=%d/>" % n
        self.pub.want(self.newest, expires, self.now)

    @rule()
    def want_removed(self):
        self.pub.want_removed(self.now)
        self.newest = None

    @rule(seconds=st.one_of(st.floats(0, 10), st.floats(0, 8000)), jitter=st.floats(0, 1))
    def advance(self, seconds, jitter):
        self.now += seconds
        self.jitter = jitter

    @rule()
    def advance_to_the_deadline(self):
        deadline = self.pub.next_deadline()
        if deadline is not None:
            self.now = max(self.now, deadline)

    @rule()
    def send(self):
        self.plan()

    def plan(self):
        etag_before, in_flight = self.pub.etag, self.pub.in_flight
        plan = self.pub.next_request(self.now)
        if plan is None:
            return None
        assert in_flight is None  # never two requests in flight
        assert self.pub.next_request(self.now) is None and self.pub.in_flight == plan
        if plan.if_match is not None:  # SIP-If-Match only with a held ETag
            assert plan.if_match == self.pub.etag == etag_before
            assert plan.if_match in self.issued
        else:
            assert plan.kind is PublishKind.INITIAL and self.pub.etag is None
        return plan

    def respond(self, status, *, with_etag=True, expires=None, min_expires=None):
        etag = f"tag{next(self.tags)}" if with_etag else None
        if etag is not None and 200 <= status < 300:
            self.issued.add(etag)
        self.pub.on_response(status, etag=etag, expires=expires, min_expires=min_expires,
                             now=self.now)

    def sent(self):
        """Something in flight to answer: the request out already, or one sent now."""
        return self.pub.in_flight is not None or self.plan() is not None

    @rule(expires=st.one_of(st.none(), st.integers(1, 7200)))
    def answer_200(self, expires):
        if self.sent():
            self.respond(200, expires=expires)

    @rule(with_etag=st.booleans(), expires=st.sampled_from([None, 0, 1, 30]))
    def answer_odd_2xx(self, with_etag, expires):
        if self.sent():
            self.respond(202, with_etag=with_etag, expires=expires)

    @rule()
    def answer_412(self):
        if self.sent():
            self.respond(412)

    @rule(min_expires=st.one_of(st.none(), st.integers(1, 100_000)))
    def answer_423(self, min_expires):
        if self.sent():
            self.respond(423, min_expires=min_expires)

    @rule(status=st.sampled_from([100, 302, 403, 408, 481, 489, 500, 503, 603]))
    def answer_other(self, status):
        if self.sent():
            self.respond(status)

    @rule()
    def time_out(self):
        if self.sent():
            self.pub.on_timeout(self.now)

    @invariant()
    def held_etags_came_from_a_2xx(self):
        assert self.pub.etag is None or self.pub.etag in self.issued
        assert (self.pub.in_flight is None) == (self.pub.state in (
            UNPUBLISHED, PUBLISHED, FAILED_WAITING))

    def teardown(self):
        """Answer everything with 200 until nothing is due: the newest wish must hold."""
        if self.pub.in_flight is not None:
            self.respond(200)
        for _ in range(100):
            plan = self.plan()
            if plan is not None:
                self.respond(200, expires=plan.expires)
                continue
            if self.pub.forgotten or (self.pub.state == PUBLISHED and self.pub.retry_at is None):
                break
            deadline = self.pub.next_deadline()
            assert deadline is not None, "stuck: work to do and no deadline"
            self.now = max(self.now, deadline)
        else:
            raise AssertionError("never settled")
        if self.newest is None:
            assert self.pub.forgotten and self.pub.etag is None
        else:
            assert self.pub.state == PUBLISHED and self.pub.etag in self.issued
            assert (self.pub.failures, self.pub.last_error) == (0, None)
            assert self.pub._published[0] == self.newest  # what the compositor holds


RandomStories.TestCase.settings = settings(max_examples=300, stateful_step_count=40,
                                           deadline=None)
test_random_stories_never_raise_and_end_publishing_the_newest_wish = RandomStories.TestCase


# --- the request on the wire ---

def build(plan, **overrides):
    args = dict(resource=RESOURCE, from_uri=RESOURCE, from_tag="ft-1", call_id="cid-1@host",
                cseq=10, branch="z9hG4bK-pub-1", via_host="192.0.2.5", via_port=5070)
    args.update(overrides)
    return build_publish(plan, **args)


def round_trip(request: SipRequest) -> SipRequest:
    parsed = parse_message(request.serialize())
    assert isinstance(parsed, SipRequest)
    assert (parsed.method, parsed.uri, parsed.body) == (request.method, request.uri, request.body)
    return parsed


def test_an_initial_publish_has_the_body_and_no_sip_if_match():
    request = round_trip(build(PublishPlan(PublishKind.INITIAL, 3600, DOC_A)))
    assert request.start_line() == f"PUBLISH {RESOURCE} SIP/2.0"
    h = request.headers
    assert h.get("Via") == "SIP/2.0/UDP 192.0.2.5:5070;branch=z9hG4bK-pub-1;rport"
    assert (h.get("To"), h.get("From")) == (f"<{RESOURCE}>", f"<{RESOURCE}>;tag=ft-1")
    assert (h.get("Call-ID"), h.get("CSeq"), h.get("Max-Forwards")) == ("cid-1@host",
                                                                        "10 PUBLISH", "70")
    assert (h.get("Event"), h.get("Expires")) == ("reg", "3600")
    assert h.get("Content-Type") == "application/reginfo+xml"
    assert h.get("Content-Length") == str(len(DOC_A)) and request.body == DOC_A
    assert "SIP-If-Match" not in h and "Route" not in h


def test_refresh_and_remove_have_sip_if_match_and_no_body():
    refresh = round_trip(build(PublishPlan(PublishKind.REFRESH, 600, None, "e1")))
    assert (refresh.headers.get("SIP-If-Match"), refresh.headers.get("Expires")) == ("e1", "600")
    assert refresh.body == b"" and "Content-Type" not in refresh.headers
    remove = round_trip(build(PublishPlan(PublishKind.REMOVE, 0, None, "e2")))
    assert (remove.headers.get("SIP-If-Match"), remove.headers.get("Expires")) == ("e2", "0")


@pytest.mark.parametrize("route, header", [
    ("sip:proxy.example.net:5060", "<sip:proxy.example.net:5060;lr>"),
    ("<sip:10.0.0.1;transport=tcp;lr>", "<sip:10.0.0.1;transport=tcp;lr>"),
])
def test_an_outbound_proxy_becomes_a_loose_route(route, header):
    request = round_trip(build(PublishPlan(PublishKind.INITIAL, 60, DOC_A), route=route))
    assert request.headers.get_all("Route") == [header]
    assert request.uri == RESOURCE  # the Request-URI stays the resource


def test_tcp_and_ipv6_in_the_via():
    request = round_trip(build(PublishPlan(PublishKind.INITIAL, 60, DOC_A), transport="tcp",
                               via_host="2001:db8::5", via_port=5061))
    assert request.headers.get("Via") == "SIP/2.0/TCP [2001:db8::5]:5061;branch=z9hG4bK-pub-1;rport"


@pytest.mark.parametrize("bad", [
    dict(resource="alice"), dict(from_tag="a b"), dict(branch="no-cookie"), dict(cseq=-1),
    dict(call_id="two words"), dict(via_port=0), dict(transport="carrier-pigeon"),
    dict(route="tel:+123"),
])
def test_bad_arguments_are_misuse(bad):
    with pytest.raises(PublicationMisuse):
        build(PublishPlan(PublishKind.INITIAL, 60, DOC_A), **bad)


def test_a_modify_is_what_kamailio_sends_but_for_its_expires_plus_one():
    wire = (FIXTURES / "0012-registrar-to-presence-PUBLISH.sip").read_bytes()
    kamailio = parse_message(wire)
    h = kamailio.headers
    from_tag = h.get("From").split("tag=")[1]
    plan = PublishPlan(PublishKind.MODIFY, 3600, kamailio.body, h.get("SIP-If-Match"))
    ours = round_trip(build(plan, resource=kamailio.uri, from_uri=kamailio.uri, from_tag=from_tag,
                            call_id=h.get("Call-ID"), cseq=10,
                            branch="z9hG4bK172e.789cc112000000000000000000000000.0",
                            via_host="127.0.0.1", via_port=5070))
    for name in ("To", "From", "CSeq", "Call-ID", "Max-Forwards", "Event", "SIP-If-Match",
                 "Content-Type", "Content-Length"):
        assert ours.headers.get(name) == h.get(name), name
    assert (ours.uri, ours.body) == (kamailio.uri, kamailio.body)
    assert (ours.headers.get("Expires"), h.get("Expires")) == ("3600", "3601")
    assert ours.headers.get("Via") == h.get("Via") + ";rport"


def test_response_fields_are_read_leniently():
    headers = Headers([("SIP-ETag", "a.1795695845.6600.2.0"), ("Expires", "3600"),
                       ("Min-Expires", "soon")])
    fields = publish_response_fields(SipResponse(200, "OK", headers=headers))
    assert (fields.etag, fields.expires, fields.min_expires) == ("a.1795695845.6600.2.0", 3600,
                                                                 None)
    empty = publish_response_fields(SipResponse(423, "Interval Too Brief"))
    assert (empty.etag, empty.expires, empty.min_expires) == (None, None, None)
