"""Administrative commands of RFC 3680: create, shorten, deactivate, probation, reject; expire."""

from __future__ import annotations

import uuid

import click

from domain import ContactUpdate, parse_uri
from infrastructure.cli.options import service_from, store_options
from infrastructure.commands import (
    CreateContact,
    DeactivateContact,
    PutOnProbation,
    RejectContact,
    RemoveBindings,
    ShortenContact,
)
from domain.address_of_record import REMOVALS

POSITIVE = click.IntRange(min=1)


def _cause(action: str) -> str:
    return f"admin: contact {action}"


@click.group(epilog="\b\nExample:\n  pua-reginfo contact deactivate alice@example.com "
             "sip:alice@192.0.2.10:5060")
def contact() -> None:
    """Administrative changes to bindings (RFC 3680 contact events)."""


@contact.command("add", epilog="\b\nExample:\n  pua-reginfo contact add alice@example.com "
                 "sip:alice@192.0.2.10:5060 --expires 3600 --q 0.8")
@click.argument("aor")
@click.argument("contact_uri", metavar="CONTACT")
@click.option("--expires", type=POSITIVE, required=True, help="Lifetime in seconds.")
@click.option("--q", type=click.FloatRange(0.0, 1.0), help="Priority, 0 to 1.")
@store_options
def add(aor: str, contact_uri: str, expires: int, q: float | None, store_url: str | None,
        config_file: str | None) -> None:
    """Create a binding for AOR (event `created`); a lifetime above `[registrar]
    max_expires` is shortened to it, as the registrar does for a REGISTER."""
    parse_uri(contact_uri)
    with service_from(store_url, config_file) as service:
        longest = service.settings.registrar.max_expires
        granted = min(expires, longest)
        update = ContactUpdate(uri=contact_uri, expires=granted, q=q)
        record = service.run(CreateContact(aor, update, f"admin-{uuid.uuid4()}", _cause("add")))
        capped = f" ([registrar] max_expires; {expires} asked)" if granted < expires else ""
        click.echo(f"created {contact_uri} on {record.aor}, expires in {granted} s{capped}")


@contact.command("shorten", epilog="\b\nExample:\n  pua-reginfo contact shorten alice@example.com "
                 "sip:alice@192.0.2.10:5060 --expires 60")
@click.argument("aor")
@click.argument("contact_uri", metavar="CONTACT")
@click.option("--expires", type=POSITIVE, required=True, help="New lifetime in seconds.")
@store_options
def shorten(aor: str, contact_uri: str, expires: int, store_url: str | None,
            config_file: str | None) -> None:
    """Bring a binding's expiry forward (event `shortened`)."""
    with service_from(store_url, config_file) as service:
        record = service.run(ShortenContact(aor, contact_uri, expires, _cause("shorten")))
        click.echo(f"shortened {contact_uri} on {record.aor} to {expires} s")


def _terminating(action: str, past: str, make: type, doc: str) -> click.Command:
    @click.argument("aor")
    @click.argument("contact_uri", metavar="CONTACT")
    @store_options
    def command(aor: str, contact_uri: str, store_url: str | None, config_file: str | None) -> None:
        with service_from(store_url, config_file) as service:
            record = service.run(make(aor, contact_uri, _cause(action)))
            click.echo(f"{past} {contact_uri} on {record.aor}")

    command.__doc__ = doc
    return contact.command(action, epilog="\b\nExample:\n  pua-reginfo contact "
                           f"{action} alice@example.com sip:alice@192.0.2.10:5060")(command)


_terminating("deactivate", "deactivated", DeactivateContact,
             "Remove a binding; the UA should re-register now (event `deactivated`).")
_terminating("reject", "rejected", RejectContact,
             "Remove a binding; the UA should not re-register (event `rejected`).")


@contact.command("rm", epilog="""\b
Examples:
  pua-reginfo contact rm alice@example.com
  pua-reginfo contact rm alice@example.com sip:alice@192.0.2.10:5060 --event rejected""")
@click.argument("aor")
@click.argument("contact_uri", metavar="[CONTACT]", required=False)
@click.option("--event", type=click.Choice(sorted(REMOVALS)), default="deactivated",
              show_default=True,
              help="deactivated: the UA should re-register now; rejected: it should not.")
@store_options
def rm(aor: str, contact_uri: str | None, event: str, store_url: str | None,
       config_file: str | None) -> None:
    """Remove every binding of AOR, or only CONTACT (like usrloc's ul.rm and
    ul.rm_contact), each recorded with --event, origin `admin`."""
    with service_from(store_url, config_file) as service:
        record, removed = service.run(RemoveBindings(aor, contact_uri, event, _cause("rm")))
        for binding in removed:
            click.echo(f"{event} {binding.contact} on {record.aor}")


@contact.command("probation", epilog="\b\nExample:\n  pua-reginfo contact probation "
                 "alice@example.com sip:alice@192.0.2.10:5060 --retry-after 300")
@click.argument("aor")
@click.argument("contact_uri", metavar="CONTACT")
@click.option("--retry-after", type=click.IntRange(min=0), required=True,
              help="Seconds before the UA may re-register.")
@store_options
def probation(aor: str, contact_uri: str, retry_after: int, store_url: str | None,
              config_file: str | None) -> None:
    """Remove a binding; the UA may re-register after --retry-after (event `probation`)."""
    with service_from(store_url, config_file) as service:
        record = service.run(PutOnProbation(aor, contact_uri, retry_after, _cause("probation")))
        click.echo(f"probation for {contact_uri} on {record.aor}, retry after {retry_after} s")


@click.command(epilog="\b\nExample:\n"
               "  pua-reginfo expire --config /etc/pua-reginfo/pua-reginfo.toml")
@store_options
def expire(store_url: str | None, config_file: str | None) -> None:
    """Record `expired` for every binding whose lifetime has ended."""
    with service_from(store_url, config_file) as service:
        count = service.expire_due()
        click.echo(f"expired {count} binding(s)")
