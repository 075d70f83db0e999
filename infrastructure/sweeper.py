"""The sweeper: records `expired` for each binding when its lifetime ends.

It wakes when the next binding of the usrloc view is due (MIN(expires), an index read),
at most SWEEP_INTERVAL after its last run (a binding registered meanwhile is in the view
by then) and at least SWEEP_MIN_PAUSE after it (bindings due close together are expired
together, in one transaction). A sweep that found AoRs due but expired nothing (the view
had not yet followed another node that expired them) waits the full interval. Sleeping a
fixed second after each run instead made the period one second plus the run's own time,
and bindings up to a second and a fraction late (bench/expiry_at_scale.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from infrastructure.commands import ExpireDue

log = logging.getLogger("pua_reginfo.serve")
SWEEP_INTERVAL = 1.0  # seconds between two sweeps at the most
SWEEP_MIN_PAUSE = 0.1  # seconds between two sweeps at the least


def sweep_pause(next_due: float | None, now: float, wasted: bool = False) -> float:
    """Seconds from `now` to the next sweep, given when the next binding is due."""
    if next_due is None or wasted:
        return SWEEP_INTERVAL
    return min(SWEEP_INTERVAL, max(SWEEP_MIN_PAUSE, next_due - now))


class Sweeper:
    """Runs on serve's event loop; reads the view on the store thread (`in_store`) and
    submits ExpireDue to the group commit (`submit`)."""

    def __init__(self, service: Any, submit: Callable[[Any], Awaitable[Any]],
                 in_store: Callable[..., Awaitable[Any]],
                 report: Callable[[str, Exception], None]):
        self.service, self.submit, self.in_store, self.report = service, submit, in_store, report

    async def run(self) -> None:
        while True:
            try:
                pause = await self.sweep()
            except Exception as error:
                self.report("sweeper", error)
                pause = SWEEP_INTERVAL
            await asyncio.sleep(pause)

    async def sweep(self) -> float:
        """Expire what is due now; the pause until the next sweep."""
        clock, view = self.service.clock, self.service.view
        due = await self.in_store(view.due_aor_ids, clock.now())
        count = 0
        if due:
            count = await self.submit(ExpireDue(tuple(UUID(d) for d in due)))
            log.info("expired %d binding(s)", count)
        return sweep_pause(await self.in_store(view.next_expiry), clock.now(),
                           wasted=bool(due) and not count)
