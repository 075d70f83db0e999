"""The eventsourcing Application: load an AddressOfRecord, call one command, save.

A save that conflicts with a concurrent writer (another process or node appended to the
same AoR first) is retried on a freshly loaded aggregate, so the command is decided on
the latest history. Retries are spread by a growing, jittered pause (two nodes retrying
in step would collide again); when the AoR stays contended through every attempt the
command fails with StoreContended (503 with Retry-After for a SIP client), never with
the database's own error.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import BaseAggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Mapper, Recording
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from domain import (
    AddressOfRecord,
    AddressOfRecordSnapshot,
    AorIdentity,
    AorPolicy,
    DomainError,
    PuaReginfoError,
    UnknownAddressOfRecord,
    normalize_aor,
)
from infrastructure.aggregate_cache import AggregateCache
from infrastructure.command_handlers import execute
from infrastructure.commands import Command
from infrastructure.event_format import EventFormat
from infrastructure.sqlite_statements import keep_statements
from infrastructure.transcodings import BindingAsDict
from infrastructure.unit_of_work import UnitOfWork
from projections.retained import Retained, retained_history

PRESENCE_CHUNK = 500  # ids per existence query (SQLite allows 32766 parameters)
CONFLICT_ATTEMPTS = 10  # saves of one command before it gives up (StoreContended)
PAUSE_BASE, PAUSE_CAP = 0.002, 0.064  # seconds: the n-th retry waits up to base * 2**n


class StoreContended(PuaReginfoError):
    """Other writers kept changing the same aggregate; nothing of the command was stored."""

    sip_status = 503
    retry_after = 1

    def __init__(self, attempts: int) -> None:
        super().__init__(f"the AoR kept changing on other nodes ({attempts} attempts); "
                         "try again")


def conflict_pause(attempt: int) -> float:
    """Seconds to wait before retry `attempt` (1, 2, ...): full jitter, growing, capped."""
    return random.uniform(0.0, min(PAUSE_CAP, PAUSE_BASE * 2 ** attempt))


class Registrations(Application[UUID]):
    """The registration ledger: every AoR's history in one append-only event store."""

    name = "Registrations"
    snapshotting_intervals = {AddressOfRecord: 100}
    snapshot_class = AddressOfRecordSnapshot

    def __init__(self, env: dict[str, str], policy: AorPolicy, node: str):
        super().__init__(env)
        self.policy = policy
        self.node = node
        if isinstance(self.factory.datastore, SQLiteDatastore):
            keep_statements(self.factory.datastore)

    def save(self, *aggregates: Any, **kwargs: Any) -> list[Recording]:
        """Store the aggregates' pending events in one transaction (Application.save,
        without the runtime Protocol checks it makes of every object: we save only
        aggregates, and those checks cost more than the rest of a small batch)."""
        if kwargs or not all(isinstance(a, BaseAggregate) for a in aggregates):
            return super().save(*aggregates, **kwargs)
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        for aggregate in aggregates:
            processing.events.extend(aggregate.collect_events())
            processing.aggregates[aggregate.id] = aggregate
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        return recordings

    def construct_mapper(self) -> Mapper[UUID]:
        return self.factory.mapper(transcoder=self.construct_transcoder(),
                                   mapper_class=EventFormat)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(BindingAsDict())

    # Reads ---------------------------------------------------------------------------

    def identify(self, aor: str) -> AorIdentity:
        return normalize_aor(aor, self.policy)

    def stored_among(self, ids: Iterable[UUID]) -> set[UUID]:
        """Which of `ids` have a history in the store (events or a snapshot): one query
        per 500 ids instead of two per aggregate."""
        wanted, found = list(ids), set()
        tables = [self.recorder.events_table_name]
        if self.snapshots is not None:
            tables.append(self.snapshots.recorder.events_table_name)
        datastore = self.factory.datastore
        postgres = isinstance(datastore, PostgresDatastore)
        if postgres:
            tables = [f"{datastore.schema}.{table}" for table in tables]
        for start in range(0, len(wanted), PRESENCE_CHUNK):
            chunk = wanted[start:start + PRESENCE_CHUNK]
            if postgres:
                where, params = "originator_id = ANY(%s)", (chunk,)
            else:
                where, params = f"originator_id IN ({', '.join('?' * len(chunk))})", \
                    tuple(i.hex for i in chunk)  # as the SQLite recorder stores them
            statement = " UNION ".join(f"SELECT originator_id FROM {table} WHERE {where}"
                                       for table in tables)
            with datastore.transaction(commit=False) as cursor:
                cursor.execute(statement, params * len(tables))
                found.update(UUID(str(row["originator_id"])) for row in cursor.fetchall())
        return found

    def history(self, aor: str) -> list[Any]:
        """Every stored event of the AoR, oldest first (the audit trail); after a prune,
        those after its horizon snapshot (see `retained`)."""
        return self.retained(aor).events

    def retained(self, aor: str) -> Retained:
        """The AoR's stored history: the seed a prune left in place of its older events,
        if one did, and the events after it, oldest first."""
        identity = self.identify(aor)
        retained = retained_history(self, identity.id)
        if retained.seed is None and not retained.events:
            raise UnknownAddressOfRecord(f"no registration history for {identity.uri}")
        return retained

    # Commands ------------------------------------------------------------------------

    def run(self, command: Command, now: float, cache: AggregateCache | None = None) -> Any:
        """Decide and store one command in its own transaction (the CLI, `handle-notify`,
        the group commit's one-by-one retries); on a conflict with a concurrent writer,
        decide it again on freshly loaded aggregates."""
        refused_on_cache = False
        for attempt in range(CONFLICT_ATTEMPTS):
            if attempt and not refused_on_cache:
                time.sleep(conflict_pause(attempt))
            uow = UnitOfWork(self, now, cache)
            try:
                result = execute(uow, command)
                uow.commit()
            except IntegrityError:
                uow.abandon()
                refused_on_cache = False
                continue
            except DomainError:
                uow.abandon()  # evicts what it loaded: a second try reads the store
                if uow.from_cache and not refused_on_cache:
                    refused_on_cache = True  # refused on state another writer moved on?
                    continue
                raise
            except BaseException:
                uow.abandon()
                raise
            return result
        raise StoreContended(CONFLICT_ATTEMPTS)
