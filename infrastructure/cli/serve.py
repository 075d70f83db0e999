"""`serve`: run the SIP gateway and the projections until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio

import click

from domain import PuaReginfoError
from infrastructure.cli.options import service_from, store_options
from infrastructure.bootstrap import Service, build_gateway
from infrastructure.event_loop import loop_factory
from infrastructure.log_setup import LEVELS, configure_logging


@click.command(epilog="\b\nExample:\n"
               "  pua-reginfo serve --config /etc/pua-reginfo/pua-reginfo.toml\n"
               "  pua-reginfo serve --udp 127.0.0.1:5060 --tcp 127.0.0.1:5060 --log-level DEBUG")
@click.option("--udp", "udp", multiple=True, metavar="HOST:PORT", help="UDP listener (repeatable).")
@click.option("--tcp", "tcp", multiple=True, metavar="HOST:PORT", help="TCP listener (repeatable).")
@click.option("--log-level", type=click.Choice(LEVELS, case_sensitive=False),
              help="Overrides [log] level (default: info); debug adds the SIP message trace.")
@store_options
def serve(udp: tuple[str, ...], tcp: tuple[str, ...], log_level: str | None,
          store_url: str | None, config_file: str | None) -> None:
    """Run the gateway (registrar and NOTIFY server on UDP and TCP) and the projections."""
    listen = {}
    if udp:
        listen["udp"] = list(udp)
    if tcp:
        listen["tcp"] = list(tcp)
    overrides = {"listen": listen, "log": {"level": log_level}}
    with service_from(store_url, config_file, overrides=overrides) as service:
        configure_logging(service.settings.log.level, service.settings.log.format)
        try:
            with asyncio.Runner(loop_factory=loop_factory(service.settings.node.event_loop)) \
                    as runner:
                runner.run(_serve(service))
        except OSError as error:
            raise PuaReginfoError(f"cannot listen: {error.strerror or error}") from None


async def _serve(service: Service) -> None:
    await build_gateway(service).run()

