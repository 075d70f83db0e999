"""The subscriptions projection: ResourceSubscription events in, keeper rows out.

For every resource subscription a batch touched, the aggregate as of the batch's last
event of it is loaded (`load`, given by the composition root: the domain decides what
the events mean) and becomes its row. A request (requested, renewed, withdrawn) also
moves the row's `requested_at` to the batch's position, which is how the subscription
keeper learns of new requests; what the keeper itself recorded (dialog established,
failures, closed) updates the row without waking it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking

from domain.resource_subscription import (
    REQUEST_TOPICS,
    RESOURCE_SUBSCRIPTION_TOPICS,
    ResourceSubscription,
)
from projections.subscriptions.view import SubscriptionRow, SubscriptionsView

Load = Callable[[UUID, int], ResourceSubscription]  # (aggregate id, version) -> aggregate


class SubscriptionsProjection:
    """Keeps the subscriptions view in step with the registration ledger."""

    name = "subscriptions"
    written: int | None = None  # the position this runner last wrote
    scanned: int = 0  # no notification of its topics up to here (projections/catch_up.py)
    topics = RESOURCE_SUBSCRIPTION_TOPICS

    def __init__(self, view: SubscriptionsView, load: Load):
        self.view, self.load = view, load

    def process(self, events: Sequence[Any], tracking: Tracking, after: int) -> None:
        versions: dict[UUID, int] = {}
        requested: set[UUID] = set()
        for event in events:
            topic = getattr(event, "TOPIC", None)
            if topic not in RESOURCE_SUBSCRIPTION_TOPICS:
                continue
            versions[event.originator_id] = event.originator_version
            if topic in REQUEST_TOPICS:
                requested.add(event.originator_id)
        known = {row.aggregate_id: row for row in self.view.rows([str(i) for i in versions])}
        rows = []
        for aggregate_id, version in versions.items():
            subscription = self.load(aggregate_id, version)
            before = known.get(str(aggregate_id))
            requested_at = (tracking.notification_id if aggregate_id in requested or before is None
                            else before.requested_at)
            rows.append(SubscriptionRow(str(aggregate_id), subscription.resource,
                                        subscription.expires, subscription.state,
                                        subscription.failures, subscription.last_error,
                                        subscription.dialog, requested_at))
        self.view.apply(rows, tracking, after)
