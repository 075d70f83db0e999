"""The notifier role's ports on the store: the SUBSCRIBE handler's (`WatchesOnExecutor`)
and the notifier's (`WatchersInStore`).

A SUBSCRIBE becomes a `Watch` command through the group-commit executor (503 while the
store is away, as for REGISTER); what it recorded is offered to the notifier, which sends
the NOTIFYs. The notifier's pictures of AoRs come from the feed (projections/notifier) on
the store thread, so that they are ordered with the changes the feed hands on; what it
sends and ends is recorded as Watcher events through the executor, and the subscriptions
it resumes are read from the watchers view.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from domain.watcher import Watcher, WatcherDialog
from infrastructure.commands import EndWatch, RecordNotified, Watch
from infrastructure.executor import GroupCommitExecutor
from infrastructure.gateway_port import submitted
from projections.notifier.feed import NotifierFeed, Picture
from projections.watchers import WatcherRow
from sip_gateway.client.notifier import Notifier
from sip_gateway.client.watcher_notifier import flow_of
from sip_gateway.server.watch_request import WatchRequest
from sip_gateway.transport import Arrival

InStore = Callable[..., Awaitable[Any]]


class WatchesOnExecutor:
    """WatchPort: a SUBSCRIBE recorded, then offered to the notifier."""

    def __init__(self, executor: GroupCommitExecutor, notifier: Notifier) -> None:
        self.executor, self.notifier = executor, notifier

    async def watch(self, ask: WatchRequest, local_tag: str, arrival: Arrival,
                    peer: bool) -> None:
        flow = flow_of(arrival.source) if arrival.transport == "tcp" else None
        dialog = WatcherDialog(ask.call_id, local_tag, ask.remote_tag, ask.watcher,
                               ask.remote_target, ask.route_set, arrival.transport, flow)
        watcher: Watcher = await submitted(
            self.executor, Watch(ask.resource, dialog, ask.expires, ask.in_dialog, peer))
        self.notifier.offer(WatcherRow.of(str(watcher.id), watcher))


class WatchersInStore:
    """WatcherLedger: pictures from the feed, records through the executor."""

    def __init__(self, service: Any, feed: NotifierFeed,
                 submit: Callable[[Any], Awaitable[Any]], in_store: InStore) -> None:
        self.service, self.feed, self.submit, self.in_store = service, feed, submit, in_store

    async def picture(self, aor_id: str, watch: bool) -> Picture:
        return await self.in_store(self.feed.picture, aor_id, watch)

    async def release(self, aor_id: str) -> None:
        await self.in_store(self.feed.unwatch, aor_id)

    async def notified(self, dialog_id: str, version: int, cseq: int, full: bool) -> None:
        await self.submit(RecordNotified(dialog_id, version, cseq, full))

    async def end(self, dialog_id: str, reason: str) -> None:
        await self.submit(EndWatch(dialog_id, reason))

    async def current(self) -> list[WatcherRow]:
        return await self.in_store(self._current)

    def _current(self) -> list[WatcherRow]:
        self.service.catch_up_watchers()
        return self.service.watchers.view.current()
