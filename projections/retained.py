"""What a prune keeps of an AoR's older history, and reading a history from there.

A prune (infrastructure/retention.py) deletes an AoR's events before a time and keeps in
their place one AddressOfRecordHorizon snapshot: the AoR at the last deleted version, and
the contact event that last changed each of its bindings. Every fold of an AoR's history
(the usrloc rebuild, the publisher's composer, `audit --at`) starts from that snapshot's
bindings, a `Seed`, and applies the events after it in order, as it would have applied the
deleted ones. An AoR without a horizon snapshot has its whole history from version 1.

A seed and the events after it are two reads. A prune committing between them (a newer
horizon, the events up to it deleted) shows as events that do not follow the seed; the
read then starts again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.utils import get_topic

from domain import AddressOfRecordHorizon, Binding, PuaReginfoError

READS = 3  # attempts at a seed and the events that follow it
PAGE = 1000  # horizon snapshots per read, in `horizons`


class HistoryPruned(PuaReginfoError):
    """What was asked for lies before the horizon of a prune: it is no longer stored."""


@dataclass(frozen=True)
class LastChange:
    """The contact event that brought a binding to its state (RFC 3680 5.1)."""

    event: str  # registered, created, refreshed or shortened
    origin: str
    at: float  # Unix seconds


@dataclass(frozen=True)
class Seed:
    """An AoR as a prune left it: the state every fold of its later events starts from."""

    aor_id: str
    aor: str
    version: int  # the last version pruned; the stored events start after it
    horizon: float  # Unix seconds: the history before it is gone
    bindings: dict[str, Binding]  # binding key -> Binding, as the aggregate held them
    changes: dict[str, LastChange]  # binding key -> its last change

    @classmethod
    def of(cls, snapshot: AddressOfRecordHorizon) -> Seed:
        state = snapshot.state
        bindings = dict(state["bindings"])
        changes = {key: LastChange(*snapshot.changes[key]) for key in bindings}
        return cls(str(snapshot.originator_id), state["aor"], snapshot.originator_version,
                   snapshot.timestamp.timestamp(), bindings, changes)


@dataclass(frozen=True)
class Retained:
    """An AoR's stored history: its seed (None: from version 1) and the events after it."""

    seed: Seed | None
    events: list[Any]


def retained_history(app: Application[Any], aor_id: UUID, upto: int | None = None) -> Retained:
    """The AoR's seed and its events after it, up to version `upto` (all without);
    HistoryPruned when the versions up to `upto` are no longer all there."""
    for _ in range(READS):
        seed = seed_of(app, aor_id)
        after = seed.version if seed is not None else 0
        if upto is not None and upto < after:
            raise HistoryPruned(f"the history of AoR {aor_id} up to version {upto} was pruned "
                                f"(it is kept from version {after + 1} on)")
        events = list(app.events.get(aor_id, gt=after or None, lte=upto))
        if events and events[0].originator_version != after + 1:
            continue  # a prune moved the horizon between the two reads
        if upto is not None and upto > after and (
                not events or events[-1].originator_version != upto):
            continue  # ... or removed the AoR: read again, to say which
        return Retained(seed, events)
    raise HistoryPruned(f"the history of AoR {aor_id} changed under {READS} reads "
                        "(a prune is running, or it was removed)")


def seed_of(app: Application[Any], aor_id: UUID) -> Seed | None:
    """The AoR's seed: its lowest snapshot, if a prune took it."""
    if app.snapshots is None:
        return None
    lowest = next(iter(app.snapshots.get(aor_id, limit=1)), None)
    return Seed.of(lowest) if isinstance(lowest, AddressOfRecordHorizon) else None


def horizons(app: Application[Any]) -> Iterator[Seed]:
    """The seed of every AoR a prune left one, read PAGE at a time in id order."""
    if app.snapshots is None:
        return
    recorder = app.snapshots.recorder
    datastore = recorder.datastore
    postgres = isinstance(datastore, PostgresDatastore)
    table = recorder.events_table_name
    if postgres:
        table, mark, after = f"{datastore.schema}.{table}", "%s", str(UUID(int=0))
    else:
        mark, after = "?", ""  # ids as 32 hex digits, as the SQLite recorder stores them
    statement = (f"SELECT originator_id, originator_version, topic, state FROM {table} "
                 f"WHERE topic = {mark} AND originator_id > {mark} "
                 f"ORDER BY originator_id LIMIT {mark}")
    topic = get_topic(AddressOfRecordHorizon)
    while True:
        with datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (topic, after, PAGE))
            rows = [dict(row) for row in cursor.fetchall()]
        for row in rows:
            snapshot = app.mapper.to_domain_event(StoredEvent(
                originator_id=UUID(str(row["originator_id"])),
                originator_version=row["originator_version"], topic=row["topic"],
                state=bytes(row["state"])))
            yield Seed.of(snapshot)
        if len(rows) < PAGE:
            return
        after = rows[-1]["originator_id"]
