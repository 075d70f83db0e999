"""The notifier: every watcher of our AoRs told their reg state (RFC 6665 4.2.2, RFC 3680 5).

Theory of operation. Each watcher is served by one task at a time, which sends its
NOTIFYs one after the other, so that a watcher never has two in flight and sees its
versions in order. A new subscription, a refresh, and every subscription resumed after
a restart or a change of leader owe the watcher full state: the AoR is pictured at its
latest version (the `WatcherLedger` port, on the store's side), and changes that arrive
meanwhile wait for the picture. After that each change of the AoR (`changed`, from the
feed in commit order) that follows the version the watcher's picture reflects is merged
into what it has not been told yet; the task sends it as one partial-state NOTIFY with
the next version. Changes that come faster than a watcher answers are merged (a binding's
latest report wins), a change that does not follow the picture's version gives full
state instead.

Every NOTIFY is recorded (its version and CSeq) before it is sent: a restart then goes on
after numbers the watcher may have seen, never reusing one. A NOTIFY that fails (no
answer, 408, 481, any error: RFC 6665 4.2.2) ends the subscription without a final NOTIFY.
A subscription that lapses ends with `timeout`, one that a fetch or an unsubscribe ended
gets its final full-state NOTIFY with `terminated;reason=timeout`, and `stop` ends every
subscription with `deactivated` (RFC 6665 4.2.2: the watcher subscribes again at once,
elsewhere if it can).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from domain.errors import DomainError
from domain.reginfo import ReginfoDocument
from domain.watcher import WatcherDialog
from domain.watcher_document import NOTHING, AorChange, Held, Shown, full_state, partial_state
from domain.watcher_machine import DEACTIVATED, FAILED, TIMEOUT
from sip_gateway.client.notify_request import NotifyDialog
from sip_gateway.client.watcher_notifier import Delivery
from sip_gateway.sip import SubscriptionState
from sip_gateway.tallies import Tally

log = logging.getLogger("pua_reginfo.notifier")
TICK = 1.0  # seconds between two looks for lapsed subscriptions
POLL_INTERVAL = 2.0  # seconds between two reads of the watchers other nodes took


class AorPicture(Protocol):
    """An AoR at one version, as a new watcher sees it."""

    aor_id: str
    version: int

    def held(self, peer: bool) -> Held: ...


class WatcherLedger(Protocol):
    """The store's side: pictures of AoRs, and what the notifier did, recorded."""

    async def picture(self, aor_id: str, watch: bool) -> AorPicture: ...
    async def release(self, aor_id: str) -> None: ...
    async def notified(self, dialog_id: str, version: int, cseq: int, full: bool) -> None: ...
    async def end(self, dialog_id: str, reason: str) -> None: ...
    async def current(self) -> Sequence[Any]: ...


class NotifySender(Protocol):
    async def send(self, dialog: NotifyDialog, transport: str, cseq: int,
                   state: SubscriptionState, body: bytes | None,
                   flow: str | None = None) -> Delivery: ...


@dataclass(eq=False)
class Served:
    """One watcher, as the notifier serves it."""

    aor: str
    aor_id: str
    dialog: WatcherDialog
    expires_at: float
    peer: bool
    version: int | None  # of the last document sent
    cseq: int  # of the last NOTIFY sent
    full_due: bool = True
    final: str | None = None  # the reason of the final NOTIFY owed
    aor_version: int | None = None  # the AoR version `held` reflects (None: not pictured)
    held: Held = field(default_factory=dict)
    pending: Shown = NOTHING  # changes not told yet
    waiting: list[AorChange] | None = None  # changes that came while being pictured
    watching: bool = False  # the feed follows its AoR for it
    task: asyncio.Task | None = None

    @property
    def dialog_id(self) -> str:
        return self.dialog.dialog_id

    @property
    def notify_dialog(self) -> NotifyDialog:
        d = self.dialog
        return NotifyDialog(self.aor, d.watcher, d.call_id, d.local_tag, d.remote_tag,
                            d.remote_target, d.route_set)

    @property
    def next_version(self) -> int:
        return 0 if self.version is None else self.version + 1

    @property
    def busy(self) -> bool:
        return self.final is not None or self.full_due or bool(self.pending)


class Notifier:
    def __init__(self, ledger: WatcherLedger, sender: NotifySender,
                 aor_id_of: Callable[[str], str], build: Callable[[ReginfoDocument], bytes],
                 clock: Callable[[], float]) -> None:
        self.ledger, self.sender, self.aor_id_of = ledger, sender, aor_id_of
        self.build, self.clock = build, clock
        self.served: dict[str, Served] = {}
        self.by_aor: dict[str, set[str]] = {}
        self.running = False
        self.sent = 0  # NOTIFYs delivered
        self.outcomes = Tally()  # NOTIFYs sent: delivered or failed, full or partial state
        self._idle = asyncio.Event()

    # What the gateway tells it ---------------------------------------------------------

    def offer(self, watcher: Any) -> None:
        """A subscription the store just recorded (a Watcher or its view row): new,
        refreshed, or ended by a fetch or an unsubscribe. Ignored unless running: the
        node that runs the notifier finds it in the store."""
        if self.running:
            self._adopt(watcher)

    def changed(self, changes: Iterable[AorChange]) -> None:
        """Changes of AoRs, in commit order."""
        for change in changes:
            for dialog_id in self.by_aor.get(change.aor_id, ()):
                served = self.served[dialog_id]
                self._take(served, change)
                self._kick(served)

    # Running ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve every subscription the store holds, and those offered, until cancelled."""
        self.running = True
        try:
            for row in await self.ledger.current():
                self._adopt(row)
            polled = self.clock()
            while True:
                await asyncio.sleep(TICK)
                await self._expire()
                if self.clock() - polled >= POLL_INTERVAL:
                    polled = self.clock()
                    for row in await self.ledger.current():
                        self._adopt(row)
        finally:
            self.running = False
            for served in list(self.served.values()):
                if served.task is not None:
                    served.task.cancel()
                await self._drop(served)

    async def stop(self, timeout: float) -> None:
        """Shutdown: end every subscription with `deactivated`, and send the final NOTIFYs
        for at most `timeout` seconds."""
        active = [s for s in self.served.values() if s.final is None]
        results = await asyncio.gather(*(self.ledger.end(s.dialog_id, DEACTIVATED)
                                         for s in active), return_exceptions=True)
        for served, result in zip(active, results):
            if isinstance(result, BaseException):
                log.warning("watcher %s: not ended at shutdown: %s", served.dialog_id, result)
                continue
            served.final = DEACTIVATED
            self._kick(served)
        tasks = [s.task for s in self.served.values() if s.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def settled(self, timeout: float = 10.0) -> None:
        """Wait until no watcher is owed a NOTIFY (tests and benchmarks)."""
        async def idle() -> None:
            while any(s.busy or (s.task is not None and not s.task.done())
                      for s in self.served.values()):
                await asyncio.sleep(0.01)
        await asyncio.wait_for(idle(), timeout)

    # Internals -------------------------------------------------------------------------

    def _adopt(self, watcher: Any) -> None:
        dialog = watcher.dialog
        served = self.served.get(dialog.dialog_id)
        active = watcher.state == "active"
        if served is None:
            if not active and not watcher.final_due:
                return
            served = Served(watcher.aor, self.aor_id_of(watcher.aor), dialog,
                            watcher.expires_at, watcher.peer, watcher.document_version,
                            watcher.cseq)
            self.served[dialog.dialog_id] = served
            self.by_aor.setdefault(served.aor_id, set()).add(dialog.dialog_id)
        elif active and watcher.expires_at > served.expires_at:
            served.full_due = True  # refreshed (RFC 6665 4.2.1.2: a NOTIFY follows)
        if active:
            served.expires_at = max(served.expires_at, watcher.expires_at)
        elif watcher.final_due and served.final is None:
            served.final = watcher.reason or TIMEOUT
        self._kick(served)

    def _take(self, served: Served, change: AorChange) -> None:
        if served.waiting is not None:
            served.waiting.append(change)
            return
        if served.aor_version is None or change.last <= served.aor_version:
            return
        if change.first == served.aor_version + 1:
            served.pending = served.pending.then(change.shown(served.peer))
            served.held = change.held(served.peer)
            served.aor_version = change.last
        else:  # the change does not follow what the watcher holds
            log.info("watcher %s: change %d-%d of %s does not follow version %d: full state",
                     served.dialog_id, change.first, change.last, served.aor,
                     served.aor_version)
            served.full_due = True

    def _kick(self, served: Served) -> None:
        if served.busy and (served.task is None or served.task.done()):
            served.task = asyncio.get_running_loop().create_task(
                self._serve(served), name=f"watcher {served.dialog_id}")

    async def _serve(self, served: Served) -> None:
        try:
            while self.served.get(served.dialog_id) is served:
                if served.final is not None:
                    await self._final(served)
                    return
                if served.full_due:
                    await self._picture(served)
                    if served.full_due:
                        continue
                    document = full_state(served.aor, served.held, served.next_version,
                                          self.clock())
                    full = True
                elif served.pending:
                    shown, served.pending = served.pending, NOTHING
                    try:
                        document = partial_state(served.aor, served.held, shown,
                                                 served.next_version, self.clock())
                        full = False
                    except ValueError:  # not expressible as a partial state: full instead
                        served.full_due = True
                        continue
                else:
                    return
                if not await self._notify(served, document, full, self._active(served)):
                    return
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the store is away: full state once it is back
            log.warning("watcher %s: not notified now: %s", served.dialog_id, error)
            if served.final is None:
                served.full_due = True

    async def _picture(self, served: Served) -> None:
        served.waiting = []
        try:
            picture = await self.ledger.picture(served.aor_id, not served.watching)
        except BaseException:
            served.waiting = None
            raise
        served.watching = True
        served.aor_version, served.held = picture.version, dict(picture.held(served.peer))
        served.pending, served.full_due = NOTHING, False
        waiting, served.waiting = served.waiting, None
        for change in waiting:
            self._take(served, change)

    def _active(self, served: Served) -> SubscriptionState:
        return SubscriptionState("active", expires=max(0, int(served.expires_at - self.clock())))

    async def _notify(self, served: Served, document: ReginfoDocument, full: bool,
                      state: SubscriptionState) -> bool:
        """Record, then send one NOTIFY; False when the subscription is over."""
        cseq = served.cseq + 1
        try:
            await self.ledger.notified(served.dialog_id, document.version, cseq, full)
        except DomainError as error:  # ended meanwhile: nothing more may be sent
            log.info("watcher %s: %s", served.dialog_id, error)
            await self._drop(served)
            return False
        served.version, served.cseq = document.version, cseq
        delivery = await self.sender.send(served.notify_dialog, served.dialog.transport, cseq,
                                          state, self.build(document), served.dialog.flow)
        self.outcomes.add("delivered" if delivery.delivered else "failed",
                          "full" if full else "partial")
        if delivery.delivered:
            self.sent += 1
            return True
        log.info("watcher %s: NOTIFY failed (%s): subscription ended", served.dialog_id,
                 delivery.reason)
        if state.state == "active":
            try:
                await self.ledger.end(served.dialog_id, FAILED)
            except Exception as error:
                log.warning("watcher %s: end not recorded: %s", served.dialog_id, error)
        await self._drop(served)
        return False

    async def _final(self, served: Served) -> None:
        if served.aor_version is None or served.full_due:
            picture = await self.ledger.picture(served.aor_id, False)
            served.held = dict(picture.held(served.peer))
        document = full_state(served.aor, served.held, served.next_version, self.clock())
        state = SubscriptionState("terminated", reason=served.final)
        if await self._notify(served, document, True, state):
            await self._drop(served)

    async def _expire(self) -> None:
        now = self.clock()
        for served in list(self.served.values()):
            if served.final is None and now >= served.expires_at:
                try:
                    await self.ledger.end(served.dialog_id, TIMEOUT)
                except Exception as error:
                    log.warning("watcher %s: expiry not recorded: %s", served.dialog_id, error)
                    continue
                served.final = TIMEOUT
                self._kick(served)

    async def _drop(self, served: Served) -> None:
        if self.served.get(served.dialog_id) is not served:
            return
        del self.served[served.dialog_id]
        dialogs = self.by_aor.get(served.aor_id)
        if dialogs is not None:
            dialogs.discard(served.dialog_id)
            if not dialogs:
                del self.by_aor[served.aor_id]
        if served.watching:
            served.watching = False
            try:
                await self.ledger.release(served.aor_id)
            except Exception as error:
                log.warning("AoR %s: not released: %s", served.aor_id, error)
