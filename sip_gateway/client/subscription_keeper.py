"""The subscription keeper: standing reg subscriptions kept alive on the wire (RFC 6665 4.1).

Theory of operation. The store says which resources we want to be subscribed to (the
`ResourceSubscription` aggregates: requested, withdrawn, and the dialog recorded before a
restart). The keeper holds one `SubscriberDialog` per resource, resumed from the recorded
dialog when it is still valid, asks each for its next SUBSCRIBE when due, sends it through
the outbound proxy (initial) or along the dialog (refresh, unsubscribe), and feeds the
answer back. NOTIFYs reach it through `claim` before their document is applied: a NOTIFY
of one of its dialogs establishes or ends that dialog (Subscription-State), and a version
gap reported by the applier asks for full state with an in-dialog SUBSCRIBE (RFC 3680
5.5). Whatever a restart needs (dialog established or refreshed, attempt failed, dialog
lost, subscription closed) is recorded through the `SubscriberStore` port.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from domain.resource_subscription import DialogState
from sip_gateway.client.agenda import Agenda
from sip_gateway.client.outbound import Hop, Outbound, next_hop
from sip_gateway.client.subscribe_request import (
    SubscribePlan,
    build_subscribe,
    notify_fields,
    subscribe_response_fields,
)
from sip_gateway.sip import SipRequest
from sip_gateway.client.subscriber import TERMINATED, SubscriberDialog
from sip_gateway.tallies import Tally

log = logging.getLogger("pua_reginfo.subscriber")
TICK = 1.0


@dataclass(frozen=True)
class WantedSubscription:
    """A resource subscription as the store holds it."""

    resource: str
    expires: int
    wanted: bool  # False: withdrawn (unsubscribe) or closed
    dialog: DialogState | None


class SubscriberStore(Protocol):
    async def changed(self) -> Sequence[WantedSubscription]: ...
    async def established(self, resource: str, dialog: DialogState) -> None: ...
    async def failed(self, resource: str, reason: str, dialog_lost: bool) -> None: ...
    async def closed(self, resource: str, reason: str) -> None: ...


@dataclass
class _Kept:
    dialog: SubscriberDialog
    recorded: tuple | None = None  # (call_id, remote_tag, cseq) of the last recorded dialog
    failures: int = 0
    closed: bool = False
    unsaved: bool = False  # recording failed (store away): tried again on the next round


class SubscriptionKeeper:
    """Keeps one SUBSCRIBE dialog per wanted resource (RFC 6665 4.1, RFC 3680 3)."""

    def __init__(self, store: SubscriberStore, outbound: Outbound, *, subscriber: str,
                 proxy: str | None, proxy_hop: Hop | None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store, self.outbound, self.subscriber = store, outbound, subscriber
        self.proxy, self.proxy_hop, self.clock = proxy, proxy_hop, clock
        self.kept: dict[str, _Kept] = {}
        self._by_call_id: dict[str, str] = {}
        self._wakeup = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._agenda = Agenda()  # a round looks only at dialogs with news or a due time
        self.outcomes = Tally()  # SUBSCRIBE results: the status, or "timeout"

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self) -> None:
        while True:
            try:
                await self._round()
            except Exception:
                log.exception("subscription keeper round failed; retrying")
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), self._sleep())
            except asyncio.TimeoutError:
                pass

    async def settle(self, timeout: float) -> None:
        """Let the SUBSCRIBEs in flight finish and be recorded (at shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    # -- NOTIFY side ---------------------------------------------------------------------

    def claim(self, request: SipRequest) -> bool:
        """Whether the NOTIFY belongs to one of our dialogs; if so, the dialog learns of it."""
        resource = self._by_call_id.get(request.headers.get("Call-ID") or "")
        fields = notify_fields(request) if resource is not None else None
        if fields is None:
            return False
        kept = self.kept[resource]
        claimed = kept.dialog.on_notify(**fields, now=self.clock())
        if claimed:
            self._spawn(self._persist(resource, kept))
            self._agenda.mark(resource)
            self.wake()
        return claimed

    def version_gap(self, request: SipRequest) -> None:
        """The applier found documents missing: ask that dialog for full state (RFC 3680)."""
        resource = self._by_call_id.get(request.headers.get("Call-ID") or "")
        if resource is not None:
            self.kept[resource].dialog.want_full_state(self.clock())
            self._agenda.mark(resource)
            self.wake()

    # -- internals ---------------------------------------------------------------------

    async def _round(self) -> None:
        now = self.clock()
        for wanted in await self.store.changed():
            self._adopt(wanted, now)
            self._agenda.mark(wanted.resource)
        for resource in self._agenda.due(now):
            kept = self.kept.get(resource)
            if kept is not None:
                await self._visit(resource, kept, now)

    async def _visit(self, resource: str, kept: _Kept, now: float) -> None:
        plan = kept.dialog.next_request(now)
        if plan is not None:
            self._index(resource, kept)
            self._spawn(self._send(resource, kept, plan))
            return
        if (kept.dialog.state == TERMINATED and not kept.closed) or kept.unsaved:
            await self._persist(resource, kept)
        if kept.unsaved:
            self._agenda.at(resource, now + TICK)
        deadline = kept.dialog.next_deadline()
        if deadline is not None:
            self._agenda.at(resource, deadline)

    def _adopt(self, wanted: WantedSubscription, now: float) -> None:
        kept = self.kept.get(wanted.resource)
        if kept is None or (kept.closed and wanted.wanted):
            if not wanted.wanted:
                return
            if wanted.dialog is not None:
                dialog = SubscriberDialog.resume(wanted.resource, self.subscriber,
                                                 wanted.expires, wanted.dialog, now)
            else:
                dialog = SubscriberDialog(wanted.resource, self.subscriber, wanted.expires)
            kept = _Kept(dialog)
            if wanted.dialog is not None:
                kept.recorded = _identity(wanted.dialog)
            self.kept[wanted.resource] = kept
            self._index(wanted.resource, kept)
            return
        if not wanted.wanted:
            kept.dialog.unsubscribe(now)
        else:
            kept.dialog.requested_expires = wanted.expires

    async def _send(self, resource: str, kept: _Kept, plan: SubscribePlan) -> None:
        dialog = kept.dialog
        unsent = None
        try:
            hop = self.proxy_hop or await asyncio.get_running_loop().run_in_executor(
                None, self._destination, plan)  # resolving a host name must not block
            via_host, via_port = self.outbound.sent_by(hop)
        except ValueError as error:  # unroutable: a failure like a timeout (RFC 3261 8.1.3.1)
            unsent = f"not sent: {error}" + ("" if self.proxy_hop else
                                             " (no [reginfo] outbound_proxy is set)")
            log.warning("SUBSCRIBE %s %s", resource, unsent)
            response = None
        else:
            request = build_subscribe(
                plan, via_host=via_host, via_port=via_port, transport=hop.transport,
                branch=self.outbound.new_branch(), contact=self.subscriber,
                route=self.proxy if not plan.in_dialog else None)
            response = await self.outbound.request(request, hop)
        now = self.clock()
        if response is None:
            dialog.on_timeout(now, unsent or "timeout")
            outcome = "unsent" if unsent else "timeout"
        else:
            dialog.on_response(response.status, **subscribe_response_fields(response), now=now)
            outcome = str(response.status)
        self.outcomes.add(outcome)
        log.log(logging.INFO if response is not None and response.status < 300
                else logging.WARNING,  # a failure: the operator should see it
                "SUBSCRIBE %s %s (Expires %d) -> %s; %s", resource, plan.kind, plan.expires,
                outcome, dialog.state)
        self._index(resource, kept)
        await self._persist(resource, kept)
        self._agenda.mark(resource)
        self.wake()

    async def _persist(self, resource: str, kept: _Kept) -> None:
        """Record what changed; if the store fails, forget that it was recorded so the
        next round records it again (a dialog, a failure or a close is never lost)."""
        before = (kept.recorded, kept.failures, kept.closed)
        kept.unsaved = False
        try:
            await self._record(resource, kept)
        except Exception as error:
            kept.recorded, kept.failures, kept.closed = before
            kept.unsaved = True
            log.warning("subscription to %s not recorded yet: %s", resource, error)

    async def _record(self, resource: str, kept: _Kept) -> None:
        dialog = kept.dialog
        state = dialog.dialog_state
        if state is not None and _identity(state) != kept.recorded:
            kept.recorded = _identity(state)
            await self.store.established(resource, state)
        if dialog.failures > kept.failures or (state is None and kept.recorded is not None
                                               and dialog.state != TERMINATED):
            lost = state is None and kept.recorded is not None
            kept.recorded = None if lost else kept.recorded
            await self.store.failed(resource, dialog.last_error or "dialog ended", lost)
        kept.failures = dialog.failures
        if dialog.state == TERMINATED and not kept.closed:
            kept.closed = True
            await self.store.closed(resource, dialog.last_error or "unsubscribed")

    def _destination(self, plan: SubscribePlan) -> Hop:
        """Without an outbound proxy: the next hop of the request's target (may resolve a
        host name)."""
        target = plan.route_set[0] if plan.in_dialog and plan.route_set else plan.request_uri
        return next_hop(target)

    def _index(self, resource: str, kept: _Kept) -> None:
        if kept.dialog.call_id is not None:
            self._by_call_id[kept.dialog.call_id] = resource

    def _spawn(self, job) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _sleep(self) -> float:
        return self._agenda.wait(self.clock(), TICK)

    def states(self) -> dict[str, int]:
        """How many subscriptions are in each state of their dialog."""
        counted: dict[str, int] = {}
        for kept in self.kept.values():
            state = str(kept.dialog.state)
            counted[state] = counted.get(state, 0) + 1
        return counted


def _identity(dialog: DialogState) -> tuple:
    return (dialog.call_id, dialog.remote_tag, dialog.cseq)
