"""Options every command takes, and opening the service they point at."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from infrastructure.bootstrap import Service, open_service
from infrastructure.settings import load_settings

F = TypeVar("F", bound=Callable[..., Any])


def store_options(command: F) -> F:
    command = click.option(
        "--store", "store_url", metavar="URL",
        help="Event store: sqlite:///path (default ./pua-reginfo.db) or postgresql://user@host/db.",
    )(command)
    command = click.option(
        "--config", "config_file", metavar="FILE", help="TOML settings file.",
    )(command)
    return command


@contextmanager
def service_from(store_url: str | None, config_file: str | None, catch_up: bool = True,
                 overrides: dict | None = None, read_only: bool = False) -> Iterator[Service]:
    """The service of the store the options name; `read_only` commands never create one.
    `overrides`: settings given by flags ({section: {key: value}})."""
    settings = load_settings(config_file, os.environ,
                             {"store": {"url": store_url}, **(overrides or {})})
    service = open_service(settings, catch_up_views=catch_up, must_exist=read_only)
    try:
        yield service
    finally:
        service.close()
