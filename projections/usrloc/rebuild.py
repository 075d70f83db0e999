"""Rebuilding the usrloc view from the whole event log while it stays in service.

Theory of operation. The new view is built in tables of its own beside the live one,
from notification 1 up to the end of the log, while every runner (each `serve` node, each
CLI command) keeps the live view moving. Then one transaction swaps it in: it locks the
live tracking row (every runner's write needs that row, so none lands meanwhile), checks
that the live view is not ahead of the new one, replaces the live table by the new one
and gives the live tracking row the new view's position. Readers see the old view or the
new one, never a view being filled. A runner that read its batch before the swap finds
the position moved and reads again; a swap that finds the live view ahead catches up and
tries again, and after `SWAP_ATTEMPTS` it swaps in anyway and leaves the difference to
the runners (applying a batch again is idempotent: every row carries the binding's state).
A swap that cannot get the live table within its lock timeout (a client holding a long
transaction on it) changes nothing and is tried again; if that goes on the rebuild stops
with RebuildIncomplete and the live view stays as it was.
Two rebuilds at once must be prevented by the caller (infrastructure holds a store lock).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventsourcing.application import Application

from domain import PuaReginfoError
from projections.catch_up import catch_up
from projections.usrloc.projection import UsrlocProjection
from projections.usrloc.view import LocationView, SwapBlocked

SWAP_ATTEMPTS = 20


class RebuildIncomplete(PuaReginfoError):
    """The rebuilt view could not be swapped in; the live view is unchanged."""


def rebuild_usrloc(app: Application[Any], view: LocationView,
                   progress: Callable[[int], None] | None = None) -> int:
    """Build the view again from the whole log and swap it in; returns events applied."""
    built = UsrlocProjection(view.beside())
    applied = catch_up(app, built, progress=progress)
    blocked = None
    for attempt in range(1, SWAP_ATTEMPTS + 1):
        try:
            if view.swap_in(built.view, app.name, behind_ok=attempt == SWAP_ATTEMPTS):
                return applied
        except SwapBlocked as error:
            blocked = error
        applied += catch_up(app, built, progress=progress)
    raise RebuildIncomplete(f"the rebuilt usrloc view could not be swapped in: the live "
                            f"view stayed locked by another transaction ({blocked}); "
                            "the live view is unchanged")
