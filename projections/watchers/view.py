"""The watchers view: each Watcher as the notifier needs it after a restart.

One row per subscription to an AoR's reg state that this service serves (RFC 6665 4.2):
the AoR, the dialog, the state (active, terminated) and reason, the expiry, whether it is
a sync peer, the version of the last document sent and the CSeq of the last NOTIFY, and
whether a final NOTIFY is still owed. The notifier finds the watchers of an AoR here, and
after a restart goes on with each from these numbers. Written with its tracking position
in one transaction, by compare-and-set (projections/tracking.py), on SQLite and
PostgreSQL alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from domain.watcher import Watcher, WatcherDialog
from projections.tracked_rows import TrackedRows

WATCHER = "reg_watcher"
TRACKING = "reg_watcher_tracking"
_DDL = ("CREATE TABLE IF NOT EXISTS {table} ("
        " aggregate_id TEXT PRIMARY KEY, aor TEXT NOT NULL, state TEXT NOT NULL,"
        " reason TEXT, expires_at DOUBLE PRECISION NOT NULL, peer INTEGER NOT NULL,"
        " document_version BIGINT, cseq BIGINT NOT NULL, final_due INTEGER NOT NULL,"
        " dialog TEXT NOT NULL)")
_COLUMNS = ("aggregate_id", "aor", "state", "reason", "expires_at", "peer", "document_version",
            "cseq", "final_due", "dialog")


@dataclass(frozen=True)
class WatcherRow:
    """One watcher as the view holds it."""

    aggregate_id: str
    aor: str
    state: str
    reason: str | None
    expires_at: float
    peer: bool
    document_version: int | None
    cseq: int
    final_due: bool
    dialog: WatcherDialog

    @classmethod
    def of(cls, aggregate_id: str, watcher: Watcher) -> WatcherRow:
        return cls(aggregate_id, watcher.aor, watcher.state, watcher.reason, watcher.expires_at,
                   watcher.peer, watcher.document_version, watcher.cseq, watcher.final_due,
                   watcher.dialog)

    def as_tuple(self) -> tuple[Any, ...]:
        dialog = json.dumps({**self.dialog.__dict__, "route_set": list(self.dialog.route_set)})
        return (self.aggregate_id, self.aor, self.state, self.reason, self.expires_at,
                int(self.peer), self.document_version, self.cseq, int(self.final_due), dialog)

    @classmethod
    def from_mapping(cls, row: Any) -> WatcherRow:
        fields = json.loads(row["dialog"])
        dialog = WatcherDialog(**{**fields, "route_set": tuple(fields["route_set"])})
        return cls(row["aggregate_id"], row["aor"], row["state"], row["reason"],
                   float(row["expires_at"]), bool(row["peer"]), row["document_version"],
                   row["cseq"], bool(row["final_due"]), dialog)


class WatchersView(TrackedRows):
    """Every watcher, as of the tracked notification id."""

    TABLE, TRACKING, COLUMNS = WATCHER, TRACKING, _COLUMNS
    DDL = (_DDL, "CREATE INDEX IF NOT EXISTS {name}_aor ON {table} (aor)")

    def of_aor(self, aor: str) -> list[WatcherRow]:
        """The watchers of `aor` still active or owed a final NOTIFY."""
        return self._rows(" WHERE aor = %s AND (state = 'active' OR final_due = 1)", (aor,))

    def current(self) -> list[WatcherRow]:
        """Every watcher still active or owed a final NOTIFY (what a restart resumes)."""
        return self._rows(" WHERE state = 'active' OR final_due = 1", ())

    def _rows(self, where: str, params: tuple) -> list[WatcherRow]:
        return [WatcherRow.from_mapping(row)
                for row in self._select(where, params, "aor, aggregate_id")]
