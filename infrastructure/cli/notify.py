"""`handle-notify`: apply a reginfo body or a whole NOTIFY through the gateway's code path."""

from __future__ import annotations

import sys

import click

from domain import PuaReginfoError
from domain.notify_rfc import NotifyResult
from infrastructure.cli.options import service_from, store_options
from infrastructure.commands import DEFAULT_SUBSCRIPTION, ApplyNotify, NotifyContext
from sip_gateway.errors import PeerError
from sip_gateway.server.notify_modes import MODES, notify_mode, read_notify

MAX_INPUT = 16 * 1024 * 1024


@click.command("handle-notify", epilog="\b\nExample:\n"
               "  pua-reginfo handle-notify notify.xml --mode kamailio\n"
               "  pua-reginfo handle-notify - < notify.sip")
@click.argument("source", metavar="FILE|-")
@click.option("--mode", type=click.Choice(MODES), help="rfc (default from settings) or kamailio.")
@click.option("--subscription", "subscription_id", metavar="ID",
              help="Subscription the document belongs to (default: the NOTIFY's dialog, "
                   f"or '{DEFAULT_SUBSCRIPTION}' for a bare body).")
@store_options
def handle_notify(source: str, mode: str | None, subscription_id: str | None,
                  store_url: str | None, config_file: str | None) -> None:
    """Apply FILE (a reginfo body or a whole SIP NOTIFY); print 1, 2 or -1."""
    data = _read(source)
    with service_from(store_url, config_file) as service:
        # what the operator hands over is applied: no subscription of ours is required
        taking = notify_mode(mode or service.settings.notify.mode, accept_unsolicited=True)
        try:
            intake = read_notify(data, taking)
        except PeerError as error:
            _report(NotifyResult(-1, f"{error.sip_status}: {error}"))
            return
        context = NotifyContext(taking, subscription_id or intake.dialog_id or DEFAULT_SUBSCRIPTION,
                                intake.ended_reason, intake.cseq,
                                service.settings.registrar.default_expires)
        _report(service.run(ApplyNotify(intake.document, context)))


def _read(source: str) -> bytes:
    try:
        if source == "-":
            data = sys.stdin.buffer.read(MAX_INPUT + 1)
        else:
            with open(source, "rb") as handle:
                data = handle.read(MAX_INPUT + 1)
    except OSError as error:
        raise PuaReginfoError(f"cannot read {source}: {error.strerror}") from None
    if len(data) > MAX_INPUT:
        raise PuaReginfoError(f"{source} is larger than {MAX_INPUT} bytes")
    return data


def _report(result: NotifyResult) -> None:
    click.echo(str(result.code))
    if result.code == -1:
        click.echo(f"pua-reginfo: -1: {result.reason}", err=True)
        click.get_current_context().exit(1)
    if result.reason:
        click.echo(f"pua-reginfo: note: {result.reason}", err=True)
