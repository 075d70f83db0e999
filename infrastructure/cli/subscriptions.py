"""`subscribe`, `unsubscribe` and `status`: the outbound half as an operator sees it.

`subscribe`/`unsubscribe` only record the request as an event; a running `serve` picks it
up within a second and acts on it (SUBSCRIBE, or in-dialog SUBSCRIBE with Expires: 0).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import click

from domain import PuaReginfoError
from domain.publication_document import resource_uri
from infrastructure.cli.options import service_from, store_options
from infrastructure.commands import RequestSubscription, WithdrawSubscription
from infrastructure.settings import Settings
from infrastructure.status import service_status
from sip_gateway.client.outbound import next_hop
from sip_gateway.client.subscriber import DEFAULT_EXPIRES


@click.command(epilog="\b\nExample:\n  pua-reginfo subscribe sip:alice@example.com --expires 3600")
@click.argument("uri")
@click.option("--expires", type=click.IntRange(1, 2**32 - 1), default=DEFAULT_EXPIRES,
              show_default=True, help="Requested subscription lifetime in seconds.")
@store_options
def subscribe(uri: str, expires: int, store_url: str | None, config_file: str | None) -> None:
    """Keep a reg subscription to URI (the running service sends the SUBSCRIBE).

    Pass the config file serve reads: it must have [reginfo] server_address, and either an
    outbound_proxy or a URI whose host can be reached directly.
    """
    with service_from(store_url, config_file) as service:
        route = subscription_route(service.settings, uri)
        found = service.run(RequestSubscription(uri, expires, "cli"))
        click.echo(f"subscription to {found.resource} requested (expires {expires} s, {route})")


@click.command(epilog="\b\nExample:\n  pua-reginfo unsubscribe sip:alice@example.com")
@click.argument("uri")
@store_options
def unsubscribe(uri: str, store_url: str | None, config_file: str | None) -> None:
    """End the reg subscription to URI (the running service sends Expires: 0)."""
    with service_from(store_url, config_file) as service:
        found = service.run(WithdrawSubscription(uri, "cli"))
        click.echo(f"subscription to {found.resource} withdrawn")


@click.command(epilog="\b\nExample:\n  pua-reginfo status --json")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@store_options
def status(as_json: bool, store_url: str | None, config_file: str | None) -> None:
    """Subscriptions, publications, watchers, projection positions and lag."""
    with service_from(store_url, config_file, read_only=True) as service:
        report = service_status(service)
        routing = _routing(service.settings)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"event store: {report['notifications']} notification(s)"
               + (f", history kept from {_when(report['horizon'])} (older pruned)"
                  if report["horizon"] is not None else ""))
    for name, projection in report["projections"].items():
        click.echo(f"projection {name}: position {projection['position']}, "
                   f"lag {projection['lag']}")
    click.echo(f"subscriptions: {len(report['subscriptions'])}"
               + (f" ({routing})" if report["subscriptions"] else ""))
    for item in report["subscriptions"]:
        click.echo(f"  {item['resource']}: {item['state']}, expires {_when(item['expires_at'])}, "
                   f"version {_show(item['version'])}, failures {item['failures']}"
                   + (f", last error: {item['last_error']}" if item["last_error"] else ""))
    click.echo(f"publications: {len(report['publications'])}")
    for item in report["publications"]:
        click.echo(f"  {item['resource']} (node {item['node']}): etag {_show(item['etag'])}, "
                   f"expires {_when(item['expires_at'])}, version {item['version']}, "
                   f"pending {item['pending']}, failures {item['failures']}"
                   + (f", last error: {item['last_error']}" if item["last_error"] else ""))
    click.echo(f"watchers: {len(report['watchers'])}")
    for item in report["watchers"]:
        click.echo(f"  {item['aor']} watched by {item['watcher']} ({item['transport']} "
                   f"{item['remote_target']}{', sync peer' if item['peer'] else ''}): "
                   f"{item['state']}" + (f" ({item['reason']})" if item["reason"] else "")
                   + f", expires {_when(item['expires_at'])}, version {_show(item['version'])}"
                   + (", final NOTIFY due" if item["final_due"] else ""))


def subscription_route(settings: Settings, uri: str) -> str:
    """How serve would send a SUBSCRIBE to `uri` with these settings; refused when it
    could not (nothing would ever be sent, and nothing would say why)."""
    reginfo = settings.reginfo
    if not reginfo.server_address:
        raise PuaReginfoError(
            "no [reginfo] server_address: serve keeps subscriptions only with one (the From "
            "and Contact of its SUBSCRIBEs); pass the config file serve reads with --config")
    if reginfo.outbound_proxy:
        return f"through {reginfo.outbound_proxy}"
    target = resource_uri(uri, reginfo.default_domain)
    try:
        host, port = next_hop(target).address
    except ValueError as error:
        raise PuaReginfoError(
            f"no [reginfo] outbound_proxy, and {target} cannot be reached directly: {error}; "
            "set outbound_proxy in the config serve reads and pass it with --config") from None
    return f"directly to {host}:{port}, no outbound_proxy"


def _routing(settings: Settings) -> str:
    """How a serve with these settings sends the subscriptions' SUBSCRIBEs, if it does."""
    reginfo = settings.reginfo
    if not reginfo.server_address:
        return ("a serve with these settings sends none: no [reginfo] server_address; "
                "pass serve's config with --config")
    if reginfo.outbound_proxy:
        return f"sent through {reginfo.outbound_proxy}"
    return "no [reginfo] outbound_proxy: each SUBSCRIBE goes to its resource's host"


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def _show(value) -> str:
    return "-" if value is None else str(value)
