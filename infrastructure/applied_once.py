"""Each REGISTER and NOTIFY applied once, whichever process received it.

With UDP workers, the kernel may hand a UA's retransmission to another process than the
original (reuseport.py draws a worker at random), where no server transaction knows it.
Applied twice, a REGISTER would be refused the second time (its CSeq is no longer above
the binding's, RFC 3261 10.3 step 7) and a UA whose first 200 was lost would read a
failure. Every request of every process therefore reaches serve's port through this
one: a request already running shares its outcome; one applied within the last WINDOW
seconds (RFC 3261 Timer J, 64*T1, how long a UA may retransmit) is not applied again: a
REGISTER is answered with the AoR's current bindings, as the original's 200 listed them
unless something changed since, and a NOTIFY with the result it had. A request that
failed may be tried again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from domain import Binding, RegisterRequest
from domain.notify_rfc import NotifyResult
from sip_gateway.server.notify_modes import NotifyIntake
from sip_gateway.server.ports import RegistrationPort

WINDOW = 32.0  # seconds, RFC 3261 Timer J for UDP


class AppliedOnce:
    """RegistrationPort around another, that runs each request (by its Call-ID and CSeq,
    or its NOTIFY dialog and CSeq) at most once."""

    def __init__(self, port: RegistrationPort, clock: Callable[[], float] = time.monotonic,
                 window: float = WINDOW) -> None:
        self.port, self.clock, self.window = port, clock, window
        self._running: dict[Hashable, asyncio.Future] = {}
        self._applied: dict[Hashable, tuple[float, Any]] = {}  # key -> (until, outcome)

    async def register(self, aor: str, request: RegisterRequest | None) -> list[Binding]:
        if request is None:  # a fetch changes nothing
            return await self.port.register(aor, None)
        key = ("REGISTER", aor, request.callid, request.cseq)
        applied = self._applied_outcome(key)
        if applied is not None:
            return await self.port.register(aor, None)
        return await self._once(key, self.port.register(aor, request))

    async def notify(self, intake: NotifyIntake, claimed: bool) -> NotifyResult:
        if intake.dialog_id is None or intake.cseq is None:
            return await self.port.notify(intake, claimed)
        key = ("NOTIFY", intake.dialog_id, intake.cseq)
        applied = self._applied_outcome(key)
        if applied is not None:
            return applied
        return await self._once(key, self.port.notify(intake, claimed))

    def _applied_outcome(self, key: Hashable) -> Any:
        now = self.clock()
        applied = self._applied
        while applied:  # entries are in the order they expire
            first = next(iter(applied))
            if applied[first][0] > now:
                break
            del applied[first]
        entry = applied.get(key)
        return entry[1] if entry is not None else None

    async def _once(self, key: Hashable, work: Awaitable[Any]) -> Any:
        running = self._running.get(key)
        if running is not None:
            work.close()  # the coroutine not run
            return await asyncio.shield(running)
        future = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            outcome = await work
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: no "never retrieved" warning without sharers
            raise
        finally:
            del self._running[key]
        future.set_result(outcome)
        self._applied[key] = (self.clock() + self.window, _kept(outcome))
        return outcome


def _kept(outcome: Any) -> Any:
    """What is remembered of an outcome: a NOTIFY's result (small); of a REGISTER only
    that it was applied (its bindings are read again)."""
    return outcome if isinstance(outcome, NotifyResult) else True

