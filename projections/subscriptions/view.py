"""The subscriptions view: each ResourceSubscription as the subscription keeper needs it.

One row per resource we are asked to keep subscribed to: the requested lifetime, the
subscription state (requested, active, waiting, withdrawn, closed), failures, the last
error, the recorded dialog, and `requested_at`, the position of the last request
(requested, renewed, withdrawn) that changed it: the keeper reads the rows requested
since it last looked. Written with its tracking position in one transaction, by
compare-and-set (projections/tracking.py), on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from domain.resource_subscription import DialogState, is_wanted
from projections.tracked_rows import TrackedRows

SUBSCRIPTION = "reg_resource_subscription"
TRACKING = "reg_subscription_tracking"
_DDL = ("CREATE TABLE IF NOT EXISTS {table} ("
        " aggregate_id TEXT PRIMARY KEY, resource TEXT NOT NULL, expires BIGINT NOT NULL,"
        " state TEXT NOT NULL, failures INTEGER NOT NULL, last_error TEXT, dialog TEXT,"
        " requested_at BIGINT NOT NULL)")
_COLUMNS = ("aggregate_id", "resource", "expires", "state", "failures", "last_error", "dialog",
            "requested_at")


@dataclass(frozen=True)
class SubscriptionRow:
    """One resource subscription as the view holds it."""

    aggregate_id: str
    resource: str
    expires: int
    state: str
    failures: int
    last_error: str | None
    dialog: DialogState | None
    requested_at: int

    @property
    def wanted(self) -> bool:
        return is_wanted(self.state)

    def as_tuple(self) -> tuple[Any, ...]:
        dialog = None
        if self.dialog is not None:
            dialog = json.dumps({**self.dialog.__dict__, "route_set": list(self.dialog.route_set)})
        return (self.aggregate_id, self.resource, self.expires, self.state, self.failures,
                self.last_error, dialog, self.requested_at)

    @classmethod
    def from_mapping(cls, row: Any) -> SubscriptionRow:
        dialog = None
        if row["dialog"] is not None:
            fields = json.loads(row["dialog"])
            dialog = DialogState(**{**fields, "route_set": tuple(fields["route_set"])})
        return cls(row["aggregate_id"], row["resource"], row["expires"], row["state"],
                   row["failures"], row["last_error"], dialog, row["requested_at"])


class SubscriptionsView(TrackedRows):
    """Every resource subscription, as of the tracked notification id."""

    TABLE, TRACKING, COLUMNS, DDL = SUBSCRIPTION, TRACKING, _COLUMNS, (_DDL,)

    def rows(self, aggregate_ids: Sequence[str] | None = None) -> list[SubscriptionRow]:
        """Every row (or those of `aggregate_ids`), in the order they were last requested."""
        where, params = "", ()
        if aggregate_ids is not None:
            if not aggregate_ids:
                return []
            where = f" WHERE aggregate_id IN ({', '.join(['%s'] * len(aggregate_ids))})"
            params = tuple(aggregate_ids)
        return self._rows(where, params)

    def requested_since(self, position: int) -> list[SubscriptionRow]:
        """The rows a request changed after `position`, oldest request first."""
        return self._rows(" WHERE requested_at > %s", (position,))

    def _rows(self, where: str, params: tuple) -> list[SubscriptionRow]:
        return [SubscriptionRow.from_mapping(row)
                for row in self._select(where, params, "requested_at, resource")]
