"""Standing reg subscriptions over a real store (SQLite and PostgreSQL): commands, the keeper's
store port, `status`, and the `subscribe` / `unsubscribe` / `status` command line."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from domain.errors import InvalidUri, NotSubscribed
from domain.reginfo import ContactInfo, ReginfoDocument, RegistrationInfo
from domain.resource_subscription import (
    ACTIVE,
    CLOSED,
    REQUESTED,
    WAITING,
    WITHDRAWN,
    DialogState,
    SubscriptionRenewed,
    SubscriptionRequested,
    SubscriptionWithdrawn,
    resource_subscription_id,
)
from infrastructure.bootstrap import open_service
from infrastructure.cli import cli
from infrastructure.commands import (
    ApplyNotify,
    NotifyContext,
    RecordSubscriber,
    RequestSubscription,
    WithdrawSubscription,
)
from infrastructure.outbound_stores import SubscriptionsInStore
from infrastructure.settings import load_settings
from infrastructure.status import service_status
from sip_gateway.client.subscription_keeper import WantedSubscription
from sip_gateway.server.notify_modes import notify_mode
from infrastructure.commands import Register
from tests.support import FakeClock, register, run_at_next_second

BOB = "sip:bob@example.com"
CAROL = "sip:carol@example.com"
DOMAIN = "example.com"


run = run_at_next_second


def topics(service, resource: str) -> list[str]:
    events = service.app.repository.event_store.get(resource_subscription_id(resource))
    return [type(event).TOPIC for event in events]


def stored(service, resource: str):
    return service.app.repository.get(resource_subscription_id(resource))


def dialog_for(service, call_id: str = "call-1@127.0.0.1", cseq: int = 1) -> DialogState:
    return DialogState(call_id, "ours-1", "theirs-1", "sip:presence@127.0.0.1:5080",
                       ("<sip:proxy.example.com;lr>",), cseq, service.clock.now() + 600)


def document(version: int, aor: str = "sip:dave@example.com") -> ReginfoDocument:
    contact = ContactInfo("sip:dave@192.0.2.4", id="c1", state="active", event="registered",
                          expires=600, callid="dave-1", cseq=version + 1)
    return ReginfoDocument(version, "full", (RegistrationInfo(aor, "r1", "active", (contact,)),))


# -- requesting and withdrawing ------------------------------------------------------------------

@pytest.mark.parametrize("given, resource", [
    ("bob", BOB),
    ("bob@example.com", BOB),
    ("sip:bob@EXAMPLE.com:5060;transport=udp", BOB),
    ("bob@other.org", "sip:bob@other.org"),
])
def test_the_resource_is_canonicalised(service, given, resource):
    found = run(service, RequestSubscription(given, 600))
    assert found.resource == resource
    loaded = stored(service, resource)
    assert (loaded.resource, loaded.expires, loaded.state) == (resource, 600, REQUESTED)


def test_a_bare_user_needs_a_default_domain(store_url):
    settings = load_settings(overrides={"store": {"url": store_url}, "node": {"id": "n"}})
    service = open_service(settings, clock=FakeClock())
    try:
        with pytest.raises(InvalidUri):
            run(service, RequestSubscription("bob", 600))
    finally:
        service.close()


def test_requesting_twice_records_one_event(service):
    run(service, RequestSubscription("bob", 600))
    run(service, RequestSubscription(BOB, 600, "config"))
    assert topics(service, BOB) == [SubscriptionRequested.TOPIC]
    run(service, RequestSubscription("bob", 900))
    assert topics(service, BOB) == [SubscriptionRequested.TOPIC, SubscriptionRenewed.TOPIC]
    assert stored(service, BOB).expires == 900


def test_withdraw_then_request_again(service):
    run(service, RequestSubscription("bob", 600))
    withdrawn = run(service, WithdrawSubscription("bob"))
    assert withdrawn.state == WITHDRAWN and stored(service, BOB).state == WITHDRAWN
    with pytest.raises(NotSubscribed, match="no subscription to sip:bob@example.com"):
        run(service, WithdrawSubscription("bob"))
    run(service, RequestSubscription("bob", 600))
    assert topics(service, BOB) == [SubscriptionRequested.TOPIC, SubscriptionWithdrawn.TOPIC,
                                    SubscriptionRenewed.TOPIC]
    assert stored(service, BOB).state == REQUESTED


def test_withdrawing_an_unknown_resource_raises_not_subscribed_and_records_nothing(service):
    head = service.app.recorder.max_notification_id() or 0
    with pytest.raises(NotSubscribed, match=CAROL):
        run(service, WithdrawSubscription("carol"))
    assert (service.app.recorder.max_notification_id() or 0) == head
    assert topics(service, CAROL) == []


def test_record_subscriber_events_land_on_the_aggregate(service):
    run(service, RequestSubscription("bob", 600))
    dialog = dialog_for(service)
    run(service, RecordSubscriber(BOB, established=dialog))
    found = stored(service, BOB)
    assert (found.state, found.dialog) == (ACTIVE, dialog)
    assert found.dialog.route_set == ("<sip:proxy.example.com;lr>",)

    run(service, RecordSubscriber(BOB, failure="481 in the dialog", dialog_lost=True))
    found = stored(service, BOB)
    assert (found.state, found.dialog, found.failures, found.last_error) == (
        WAITING, None, 1, "481 in the dialog")

    run(service, RecordSubscriber(BOB, established=dialog_for(service, "call-2@127.0.0.1")))
    assert (stored(service, BOB).failures, stored(service, BOB).dialog.call_id) == (
        0, "call-2@127.0.0.1")

    run(service, RecordSubscriber(BOB, closed="terminated;reason=rejected"))
    found = stored(service, BOB)
    assert (found.state, found.dialog, found.last_error, found.wanted) == (
        CLOSED, None, "terminated;reason=rejected", False)


def test_record_subscriber_for_an_unknown_resource_records_nothing(service):
    head = service.app.recorder.max_notification_id() or 0
    assert run(service, RecordSubscriber(CAROL, failure="timeout")) is None
    assert (service.app.recorder.max_notification_id() or 0) == head


# -- the keeper's store port ----------------------------------------------------------------------

def test_changed_returns_each_changed_subscription_once(service):
    port = SubscriptionsInStore(service, submit=None, in_store=None)
    assert port._changed() == []
    run(service, RequestSubscription("bob", 600))
    run(service, RequestSubscription("carol", 900))
    run(service, RequestSubscription("bob", 600))  # no change, no event
    assert port._changed() == [WantedSubscription(BOB, 600, True, None),
                               WantedSubscription(CAROL, 900, True, None)]
    assert port._changed() == []

    dialog = dialog_for(service)
    run(service, RecordSubscriber(BOB, established=dialog))  # the keeper's own news
    assert port._changed() == []

    run(service, WithdrawSubscription("bob"))
    assert port._changed() == [WantedSubscription(BOB, 600, False, dialog)]
    assert port._changed() == []

    run(service, RequestSubscription("carol", 1200))
    run(service, RequestSubscription("carol", 1300))
    assert port._changed() == [WantedSubscription(CAROL, 1300, True, None)]
    assert port._changed() == []


def test_a_new_port_sees_every_subscription_from_the_start(service):
    run(service, RequestSubscription("bob", 600))
    run(service, WithdrawSubscription("bob"))
    run(service, RequestSubscription("carol", 900))
    fresh = SubscriptionsInStore(service, submit=None, in_store=None)
    assert fresh._changed() == [WantedSubscription(BOB, 600, False, None),
                                WantedSubscription(CAROL, 900, True, None)]


def test_the_port_records_what_the_keeper_learned(service):
    run(service, RequestSubscription("bob", 600))

    async def submit(command):
        return run(service, command)

    async def in_store(function, *args):
        return function(*args)

    port = SubscriptionsInStore(service, submit, in_store)
    dialog = dialog_for(service)

    async def story():
        assert await port.changed() == [WantedSubscription(BOB, 600, True, None)]
        await port.established(BOB, dialog)
        assert stored(service, BOB).dialog == dialog
        await port.failed(BOB, "timeout", False)
        assert (stored(service, BOB).failures, stored(service, BOB).dialog) == (1, dialog)
        await port.closed(BOB, "489: no reg")
        assert await port.changed() == []

    asyncio.run(story())
    found = stored(service, BOB)
    assert (found.state, found.last_error) == (CLOSED, "489: no reg")


# -- status ---------------------------------------------------------------------------------------

def test_status_reports_subscriptions_publications_and_lag(service):
    service.catch_up_publisher()  # the publisher's first start: from the log's end
    run(service, RequestSubscription("bob", 600))
    run(service, RequestSubscription("carol", 900))
    dialog = dialog_for(service)
    run(service, RecordSubscriber(BOB, established=dialog))
    context = NotifyContext(notify_mode("rfc"), subscription_id=dialog.dialog_id, claimed=True)
    assert run(service, ApplyNotify(document(4), context)).code == 1
    assert run(service, ApplyNotify(document(5), context)).code == 1
    run(service, RecordSubscriber(CAROL, failure="503 response"))
    service.clock.advance(1)
    service.app.run(Register("sip:alice@example.com",
                         register("alice-1", 1, ("sip:alice@10.0.0.1", 600))),
                         service.clock.now())
    service.catch_up_publisher()

    report = service_status(service)
    head = service.app.recorder.max_notification_id()
    assert report["notifications"] == head
    subscriptions = {s["resource"]: s for s in report["subscriptions"]}
    assert subscriptions[BOB] == {
        "resource": BOB, "state": ACTIVE, "requested_expires": 600,
        "expires_at": dialog.expires_at, "dialog": dialog.dialog_id, "version": 5,
        "failures": 0, "last_error": None}
    assert subscriptions[CAROL] == {
        "resource": CAROL, "state": WAITING, "requested_expires": 900, "expires_at": None,
        "dialog": None, "version": None, "failures": 1, "last_error": "503 response"}

    [publication] = report["publications"]
    assert (publication["resource"], publication["node"], publication["pending"],
            publication["etag"], publication["failures"]) == (
        "sip:alice@example.com", "test-node", 1, None, 0)

    usrloc = report["projections"]["usrloc"]
    publisher = report["projections"]["publisher@test-node"]
    assert publisher == {"position": head, "lag": 0}
    assert usrloc["lag"] == head - usrloc["position"] > 0
    service.catch_up()
    assert service_status(service)["projections"]["usrloc"] == {"position": head, "lag": 0}


def test_status_of_an_established_dialog_without_any_notify_has_no_version(service):
    run(service, RequestSubscription("bob", 600))
    run(service, RecordSubscriber(BOB, established=dialog_for(service)))
    [item] = service_status(service)["subscriptions"]
    assert (item["state"], item["version"], item["dialog"]) == (
        ACTIVE, None, "call-1@127.0.0.1;local=ours-1;remote=theirs-1")
    assert "publisher@test-node" not in service_status(service)["projections"]


# -- the command line -----------------------------------------------------------------------------

@pytest.fixture
def cli_run(store_url, tmp_path):
    config = tmp_path / "pua-reginfo.toml"
    config.write_text(f'[reginfo]\ndefault_domain = "{DOMAIN}"\n'
                      'server_address = "sip:reginfo@127.0.0.1:5060"\n'
                      'outbound_proxy = "sip:127.0.0.1:5080"\n')
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True):
        result = runner.invoke(cli, [*args, "--store", store_url, "--config", str(config)])
        if ok:
            assert result.exit_code == 0, result.output + result.stderr
        return result

    return invoke


def status_json(cli_run) -> dict:
    return json.loads(cli_run("status", "--json").stdout)


def test_cli_subscribe_unsubscribe_and_status(cli_run):
    result = cli_run("subscribe", "bob", "--expires", "600")
    assert result.stdout.strip() == (f"subscription to {BOB} requested (expires 600 s, "
                                     "through sip:127.0.0.1:5080)")
    cli_run("subscribe", "carol@example.com")
    report = status_json(cli_run)
    assert set(report) == {"notifications", "horizon", "projections", "subscriptions",
                           "publications", "watchers"}
    assert report["watchers"] == []
    assert report["horizon"] is None  # never pruned
    subscriptions = {s["resource"]: s for s in report["subscriptions"]}
    assert (subscriptions[BOB]["state"], subscriptions[BOB]["requested_expires"]) == (
        REQUESTED, 600)
    assert subscriptions[CAROL]["requested_expires"] == 3761  # RFC 3680's default
    assert set(subscriptions[BOB]) == {"resource", "state", "requested_expires", "expires_at",
                                       "dialog", "version", "failures", "last_error"}
    assert report["publications"] == []
    assert report["projections"]["usrloc"]["lag"] == 0

    result = cli_run("unsubscribe", "sip:bob@example.com")
    assert result.stdout.strip() == f"subscription to {BOB} withdrawn"
    states = {s["resource"]: s["state"] for s in status_json(cli_run)["subscriptions"]}
    assert states == {BOB: WITHDRAWN, CAROL: REQUESTED}

    table = cli_run("status").stdout
    assert "subscriptions: 2" in table and "publications: 0" in table
    assert "watchers: 0" in table
    assert f"  {BOB}: withdrawn, expires -, version -, failures 0" in table
    assert "projection usrloc: position" in table and "event store:" in table


def test_cli_subscribe_twice_and_after_unsubscribe(cli_run):
    cli_run("subscribe", "bob", "--expires", "600")
    cli_run("subscribe", "bob", "--expires", "600")
    cli_run("unsubscribe", "bob")
    cli_run("subscribe", "bob", "--expires", "600")
    [item] = status_json(cli_run)["subscriptions"]
    assert (item["resource"], item["state"]) == (BOB, REQUESTED)
    assert status_json(cli_run)["notifications"] == 3  # requested, withdrawn, renewed


def test_cli_unsubscribe_of_an_unknown_resource_is_one_line_and_exit_1(cli_run):
    result = cli_run("unsubscribe", "carol", ok=False)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"pua-reginfo: error: no subscription to {CAROL} is kept\n"
    assert "Traceback" not in result.output


def test_cli_subscribe_refuses_a_bad_expires(cli_run):
    cli_run("expire")  # the store exists (status, which only reads, creates none)
    result = cli_run("subscribe", "bob", "--expires", "0", ok=False)
    assert result.exit_code == 2 and "expires" in result.stderr.lower()
    assert status_json(cli_run)["subscriptions"] == []


@pytest.mark.parametrize("reginfo, uri, refusal", [
    ("", "bob", "no [reginfo] server_address: serve keeps subscriptions only with one"),
    ('server_address = "sip:reginfo@127.0.0.1:5060"\n', "sips:bob@127.0.0.1",
     "no [reginfo] outbound_proxy, and sips:bob@127.0.0.1 cannot be reached directly"),
])
def test_cli_subscribe_refuses_what_serve_could_never_send(store_url, tmp_path, reginfo, uri,
                                                           refusal):
    config = tmp_path / "serve.toml"
    config.write_text(f'[reginfo]\ndefault_domain = "{DOMAIN}"\n{reginfo}')
    result = CliRunner().invoke(cli, ["subscribe", uri, "--store", store_url,
                                      "--config", str(config)])
    assert result.exit_code == 1 and refusal in result.stderr, result.stderr
    status = CliRunner().invoke(cli, ["status", "--json", "--store", store_url])
    assert json.loads(status.stdout)["subscriptions"] == []  # nothing was recorded


def test_status_says_when_its_settings_would_send_no_subscribe(cli_run, store_url):
    cli_run("subscribe", "bob")
    assert "(sent through sip:127.0.0.1:5080)" in cli_run("status").stdout
    bare = CliRunner().invoke(cli, ["status", "--store", store_url], env={})
    assert ("subscriptions: 1 (a serve with these settings sends none: no [reginfo] "
            "server_address" in bare.stdout), bare.stdout


def test_cli_subscribe_without_a_proxy_to_an_address_says_it_goes_there(store_url, tmp_path):
    config = tmp_path / "serve.toml"
    config.write_text('[reginfo]\nserver_address = "sip:reginfo@127.0.0.1:5060"\n')
    result = CliRunner().invoke(cli, ["subscribe", "sip:bob@127.0.0.1:5090", "--store",
                                      store_url, "--config", str(config)])
    assert result.exit_code == 0, result.stderr
    assert "directly to 127.0.0.1:5090, no outbound_proxy" in result.stdout
