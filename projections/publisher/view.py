"""The publisher view: per-node publications (RFC 3903), a persistent outbox, and tracking.

Each batch of composed documents enters the outbox together with the tracking position
of the last notification it reflects, in one transaction, and the tracking upsert only
moves forwards: a batch is written exactly once even when two runners race. The sender
takes documents from the outbox oldest first and, once the event state compositor
accepted one (RFC 3903 4.2-4.4: a 2xx with SIP-ETag and Expires), deletes it and keeps the
entity-tag on the publication row. Every node tracks and publishes on its own. The same
code serves SQLite and PostgreSQL; only the placeholder style, the schema prefix and the
column types differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from projections.publisher.composer import ComposedDocument
from projections.tracking import rows_changed

PUBLICATION = "reginfo_publication"
OUTBOX = "reginfo_outbox"
TRACKING = "reginfo_publisher_tracking"

_DDL = (
    "CREATE TABLE IF NOT EXISTS {publication} ("
    " node TEXT NOT NULL, resource TEXT NOT NULL, aor_id TEXT NOT NULL,"
    " version BIGINT NOT NULL, etag TEXT, expires_at DOUBLE PRECISION,"
    " failures INTEGER NOT NULL DEFAULT 0, last_error TEXT,"
    " updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (node, resource))",
    "CREATE TABLE IF NOT EXISTS {outbox} ("
    " id {serial}, node TEXT NOT NULL, resource TEXT NOT NULL, aor_id TEXT NOT NULL,"
    " version BIGINT NOT NULL, body {blob} NOT NULL, expires INTEGER NOT NULL,"
    " final {boolean} NOT NULL, composed_at DOUBLE PRECISION NOT NULL, notification_id BIGINT)",
    "CREATE INDEX IF NOT EXISTS reginfo_outbox_resource ON {outbox} (node, resource, id)",
    "CREATE TABLE IF NOT EXISTS {tracking} ("
    " application_name TEXT PRIMARY KEY, notification_id BIGINT NOT NULL)",
)
_TYPES = {
    "sqlite": {"serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "blob": "BLOB", "boolean": "INTEGER"},
    "postgres": {"serial": "BIGSERIAL PRIMARY KEY", "blob": "BYTEA", "boolean": "BOOLEAN"},
}
_OUTBOX_COLUMNS = ("node", "resource", "aor_id", "version", "body", "expires", "final",
                   "composed_at", "notification_id")
_PUBLICATION_COLUMNS = ("node", "resource", "aor_id", "version", "etag", "expires_at",
                        "failures", "last_error")


@dataclass(frozen=True)
class OutboxDocument:
    """A composed document waiting to be PUBLISHed (RFC 3903 4.1)."""

    id: int
    node: str
    resource: str
    aor_id: str
    version: int
    body: bytes
    expires: int
    final: bool
    composed_at: float
    notification_id: int | None


@dataclass(frozen=True)
class PublicationRow:
    """What a node holds for one resource: entity-tag, lifetime, failures, pending count."""

    node: str
    resource: str
    aor_id: str
    version: int
    etag: str | None
    expires_at: float | None
    failures: int
    last_error: str | None
    pending: int


class PublisherView(TrackingRecorder):
    """Publications and outbox of every node, as of each node's tracked notification id."""

    def __init__(self, datastore: SQLiteDatastore | PostgresDatastore):
        self.datastore = datastore
        if isinstance(datastore, PostgresDatastore):
            prefix, self.mark, self._types = f"{datastore.schema}.", "%s", _TYPES["postgres"]
        else:
            prefix, self.mark, self._types = "", "?", _TYPES["sqlite"]
        self.publication = prefix + PUBLICATION
        self.outbox = prefix + OUTBOX
        self.tracking = prefix + TRACKING
        self._track = self._sql(
            f"INSERT INTO {self.tracking} (application_name, notification_id) VALUES (%s, %s) "
            f"ON CONFLICT (application_name) DO UPDATE SET notification_id = excluded.notification_id "
            f"WHERE {self.tracking}.notification_id < excluded.notification_id "
            f"RETURNING notification_id")
        self._enqueue = self._sql(
            f"INSERT INTO {self.outbox} ({', '.join(_OUTBOX_COLUMNS)}) "
            f"VALUES ({', '.join(['%s'] * len(_OUTBOX_COLUMNS))})")
        self._version = self._sql(
            f"INSERT INTO {self.publication} (node, resource, aor_id, version, failures, updated_at)"
            f" VALUES (%s, %s, %s, %s, 0, %s) ON CONFLICT (node, resource) DO UPDATE SET"
            f" aor_id = excluded.aor_id, version = excluded.version, updated_at = excluded.updated_at"
            f" WHERE {self.publication}.version = excluded.version - 1")

    def _sql(self, statement: str) -> str:
        return statement.replace("%s", self.mark)

    def create_table(self) -> None:
        names = {"publication": self.publication, "outbox": self.outbox,
                 "tracking": self.tracking, **self._types}
        with self.datastore.transaction(commit=True) as cursor:
            for statement in _DDL:
                cursor.execute(statement.format(**names))

    # TrackingRecorder ----------------------------------------------------------------

    def insert_tracking(self, tracking: Tracking) -> None:
        self.apply([], tracking)

    def max_tracking_id(self, application_name: str) -> int | None:
        rows = self._select(f"SELECT notification_id FROM {self.tracking} "
                            "WHERE application_name = %s", (application_name,))
        return rows[0]["notification_id"] if rows else None

    # The projection's writes ---------------------------------------------------------

    def versions(self, node: str, resources: Iterable[str]) -> dict[str, int]:
        """The last composed version of each resource the node has published."""
        wanted, found = sorted(set(resources)), {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            rows = self._select(
                f"SELECT resource, version FROM {self.publication} WHERE node = %s "
                f"AND resource IN ({', '.join(['%s'] * len(chunk))})", (node, *chunk))
            found.update((r["resource"], r["version"]) for r in rows)
        return found

    def apply(self, documents: Sequence[ComposedDocument], tracking: Tracking) -> None:
        """Queue one batch's documents with its tracking position; refuse a replayed batch.

        Each document moves its resource's version on by one (0 for a new resource); a
        document whose version does not follow the stored one is refused like a replay.
        """
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(self._track, (tracking.application_name, tracking.notification_id))
            if cursor.fetchone() is None:
                raise IntegrityError(f"publisher view already reflects notification "
                                     f"{tracking.notification_id} of {tracking.application_name}")
            if not documents:
                return
            cursor.executemany(self._version, [
                (doc.node, doc.resource, doc.aor_id, doc.version, doc.composed_at)
                for doc in documents])
            if rows_changed(cursor) != len(documents):
                raise IntegrityError(f"a version of {len(documents)} documents does not "
                                     "follow the one stored for its resource and node")
            cursor.executemany(self._enqueue, [
                (doc.node, doc.resource, doc.aor_id, doc.version, doc.body, doc.expires,
                 bool(doc.final), doc.composed_at, doc.notification_id) for doc in documents])

    # The sender's writes -------------------------------------------------------------

    def acknowledge(self, node: str, resource: str, outbox_ids: Iterable[int], etag: str | None,
                    expires_at: float | None, now: float) -> None:
        """The compositor accepted (RFC 3903 4.2-4.4): drop the sent documents, keep the tag."""
        self.acknowledge_many(node, [(resource, list(outbox_ids), etag, expires_at)], now)

    def acknowledge_many(self, node: str, acks: Sequence[tuple[str, list[int], str | None,
                                                             float | None]], now: float) -> None:
        """Several acknowledgements in one transaction (resource, ids, etag, expires_at)."""
        with self.datastore.transaction(commit=True) as cursor:
            self._delete(cursor, [i for _, ids, _, _ in acks for i in ids])
            cursor.executemany(self._sql(
                f"UPDATE {self.publication} SET etag = %s, expires_at = %s, failures = 0,"
                f" last_error = NULL, updated_at = %s WHERE node = %s AND resource = %s"),
                [(etag, expires_at, now, node, resource) for resource, _, etag, expires_at in acks])

    def forget_etag(self, node: str, resource: str, now: float) -> None:
        """The publication is removed (RFC 3903 4.5) or its entity-tag is gone (412)."""
        self._update(node, resource, "etag = NULL, expires_at = NULL, updated_at = %s", (now,))

    def record_failure(self, node: str, resource: str, error: str, failures: int,
                       now: float) -> None:
        self._update(node, resource, "failures = %s, last_error = %s, updated_at = %s",
                     (failures, error, now))

    def discard(self, outbox_ids: Iterable[int]) -> None:
        """Drop documents a newer one of the same resource superseded."""
        with self.datastore.transaction(commit=True) as cursor:
            self._delete(cursor, outbox_ids)

    def _delete(self, cursor: Any, outbox_ids: Iterable[int]) -> None:
        ids = [(i,) for i in outbox_ids]
        if ids:
            cursor.executemany(self._sql(f"DELETE FROM {self.outbox} WHERE id = %s"), ids)

    def _update(self, node: str, resource: str, assignments: str, params: tuple) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(self._sql(f"UPDATE {self.publication} SET {assignments} "
                                     "WHERE node = %s AND resource = %s"),
                           (*params, node, resource))

    # Retention -----------------------------------------------------------------------

    def forget_settled(self, cursor: Any, aor_ids: Sequence[str], before: float) -> int:
        """In the caller's transaction (a prune's): delete the publications of `aor_ids`
        (AoRs the prune removed) that nothing needs any more: no document waiting, no
        entity-tag alive at `before`, unchanged since. A registration of the AoR later is
        a new publication (version 0). Returns how many were deleted."""
        deleted = 0
        for start in range(0, len(aor_ids), 500):
            chunk = aor_ids[start:start + 500]
            cursor.execute(self._sql(
                f"DELETE FROM {self.publication} WHERE aor_id IN "
                f"({', '.join(['%s'] * len(chunk))}) AND updated_at < %s"
                " AND (etag IS NULL OR expires_at IS NULL OR expires_at <= %s)"
                f" AND NOT EXISTS (SELECT 1 FROM {self.outbox} o"
                f" WHERE o.node = {self.publication}.node"
                f" AND o.resource = {self.publication}.resource) RETURNING version"),
                (*chunk, before, before))
            deleted += len(cursor.fetchall())
        return deleted

    # Reads ---------------------------------------------------------------------------

    def pending(self, node: str, after_id: int = 0) -> list[OutboxDocument]:
        """The node's documents not yet accepted (queued after `after_id`), oldest first."""
        rows = self._select(f"SELECT id, {', '.join(_OUTBOX_COLUMNS)} FROM {self.outbox} "
                            "WHERE node = %s AND id > %s ORDER BY id", (node, after_id))
        return [OutboxDocument(**{**r, "body": bytes(r["body"]), "final": bool(r["final"])})
                for r in map(dict, rows)]

    def waiting(self, node: str) -> int:
        """How many of the node's documents wait in the outbox."""
        return self._select(f"SELECT COUNT(*) AS n FROM {self.outbox} WHERE node = %s",
                            (node,))[0]["n"]

    def publications(self, node: str | None = None) -> list[PublicationRow]:
        """Every publication (of one node), with how many documents wait for it."""
        columns = ", ".join(f"p.{c}" for c in _PUBLICATION_COLUMNS)
        where, params = ("WHERE p.node = %s ", (node,)) if node is not None else ("", ())
        rows = self._select(
            f"SELECT {columns}, (SELECT COUNT(*) FROM {self.outbox} o WHERE o.node = p.node"
            f" AND o.resource = p.resource) AS pending FROM {self.publication} p {where}"
            "ORDER BY p.node, p.resource", params)
        return [PublicationRow(**dict(r)) for r in rows]

    def _select(self, statement: str, params: tuple[Any, ...]) -> list[Any]:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(self._sql(statement), params)
            return list(cursor.fetchall())
