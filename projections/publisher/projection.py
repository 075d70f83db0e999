"""The publisher projection: the registration ledger in, PUBLISH documents (RFC 3903) out.

Theory of operation. Notifications are read in batches straight from the recorder and
regrouped into messages (one command on one AoR). Every message moves the composer's
local state on; a message this node decided that changed a local binding gives one
full-state document (RFC 3680 5.3) with the resource's next version, queued in the
outbox with the tracking position of the batch in one transaction. A full batch may end
in the middle of a message, so its trailing message is left for the next read, which
starts at it (a batch holding nothing but that message is read again, larger).

Each node tracks its own position (`<app name>@<node>`). On the first start of a node
nothing is published for the history already recorded: its position starts at the
current end of the log. A batch another runner already wrote is refused by the view;
the loser carries on from the winner's position, like projections.catch_up.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Notification, Tracking

from domain import PuaReginfoError
from projections.publisher.composer import ComposedDocument, Composer, History, Local, seeded
from projections.publisher.messages import Message, group_messages, publishes
from projections.publisher.view import PublisherView
from projections.retained import retained_history

BATCH_SIZE = 1000
log = logging.getLogger("pua_reginfo.publisher")


def stored_history(app: Application[Any]) -> History:
    """The composer's `history`: the local bindings of an AoR's seed (none unless a prune
    left one) and its stored events after it up to a version, oldest first."""
    def history(aor_id: str, upto_version: int) -> tuple[Local, list[Any]]:
        retained = retained_history(app, UUID(aor_id), upto_version)
        return seeded(retained.seed), retained.events
    return history


class PublisherProjection:
    """Keeps one node's outbox in step with the registration ledger."""

    def __init__(self, view: PublisherView, node: str, app_name: str, composer: Composer):
        self.view = view
        self.node = node
        self.name = f"{app_name}@{node}"
        self.composer = composer
        self.written: int | None = None  # the position this runner last wrote

    def position(self) -> int | None:
        return self.view.max_tracking_id(self.name)

    def start(self, app: Application[Any]) -> int:
        """The tracked position; on a node's first start, the current end of the log."""
        found = self.position()
        if found is not None:
            return found
        try:
            self.view.insert_tracking(Tracking(self.name, app.recorder.max_notification_id() or 0))
        except IntegrityError:
            pass  # another runner started this node first
        return self.position() or 0

    def catch_up(self, app: Application[Any], batch_size: int = BATCH_SIZE) -> int:
        """Apply every notification after the node's position; returns how many."""
        done, start, limit = 0, self.start(app) + 1, batch_size
        while True:
            notifications = app.recorder.select_notifications(start, limit=limit)
            if not notifications:
                self.written = start - 1
                return done
            events = [app.mapper.to_domain_event(n) for n in notifications]
            messages = group_messages(events, [n.id for n in notifications])
            cut = _complete(notifications, messages, full=len(notifications) == limit)
            if cut == 0:
                limit *= 2  # one message fills the whole batch: read more of it at once
                continue
            if cut < len(notifications):
                messages = messages[:-1]
            last = notifications[cut - 1].id
            try:
                self.process(messages, Tracking(self.name, last))
            except IntegrityError:
                # Another runner wrote (part of) this batch first: continue after its position.
                start, limit = (self.position() or 0) + 1, batch_size
                continue
            done += cut
            start, limit = last + 1, batch_size
            self.written = last

    def apply_committed(self, app: Application[Any], committed: Sequence[tuple[int, Any]]) -> int:
        """Compose from (notification id, event) pairs a transaction of this process just
        committed, as they are when they follow the node's position without a gap (a
        transaction ends with a whole message); otherwise catch up from the store."""
        ids = [i for i, _ in committed]
        after = self.written
        if (after is None or not ids or ids[0] != after + 1
                or ids[-1] - ids[0] != len(ids) - 1):
            return self.catch_up(app)
        try:
            self.process(group_messages([e for _, e in committed], ids),
                         Tracking(self.name, ids[-1]))
        except IntegrityError:  # another runner wrote it first
            self.written = None
            return self.catch_up(app)
        self.written = ids[-1]
        return len(ids)

    def process(self, messages: Sequence[Message], tracking: Tracking) -> None:
        """Compose the published messages' documents and write them with `tracking`."""
        self.view.apply(self.documents(messages), tracking)

    def documents(self, messages: Sequence[Message]) -> list[ComposedDocument]:
        """Fold every message into the composer; the documents of the published ones."""
        resources = [self._resource(m) if publishes(m, self.node) else None for m in messages]
        versions = self.view.versions(self.node, {r for r in resources if r is not None})
        documents: list[ComposedDocument] = []
        for message, resource in zip(messages, resources):
            if resource is None:
                self.composer.absorb(message)
                continue
            try:
                document = self.composer.compose(message, versions.get(resource, -1) + 1)
            except (ValueError, PuaReginfoError) as error:  # the state moved on regardless
                log.warning("no PUBLISH for %s (%s): %s", message.aor, message.cause, error)
                continue
            versions[resource] = document.version
            documents.append(document)
        return documents

    def _resource(self, message: Message) -> str | None:
        try:
            return self.composer.resource(message)
        except (ValueError, PuaReginfoError) as error:
            log.warning("no PUBLISH for %s: %s", message.aor, error)
            return None  # absorbed by process()


def _complete(notifications: Sequence[Notification], messages: Sequence[Message],
              full: bool) -> int:
    """How many notifications hold only complete messages (all of them unless `full`)."""
    if not full or not messages:
        return len(notifications)
    first = messages[-1].first_notification_id
    return next(i for i, n in enumerate(notifications) if n.id == first)
