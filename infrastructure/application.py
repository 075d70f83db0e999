"""The eventsourcing Application: load an AddressOfRecord, call one command, save.

A save that conflicts with a concurrent writer (another process or node appended to the
same AoR first) is retried on a freshly loaded aggregate, so the command is decided on
the latest history.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, JSONTranscoder

from domain import (
    AddressOfRecord,
    AddressOfRecordSnapshot,
    AorIdentity,
    AorPolicy,
    Binding,
    ContactUpdate,
    RegisterRequest,
    UnknownAddressOfRecord,
    normalize_aor,
)
from infrastructure.transcodings import BindingAsDict

CONFLICT_RETRIES = 5


class Registrations(Application[UUID]):
    """The registration ledger: every AoR's history in one append-only event store."""

    name = "Registrations"
    snapshotting_intervals = {AddressOfRecord: 100}
    snapshot_class = AddressOfRecordSnapshot

    def __init__(self, env: dict[str, str], policy: AorPolicy, node: str):
        super().__init__(env)
        self.policy = policy
        self.node = node

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(BindingAsDict())

    # Reads ---------------------------------------------------------------------------

    def identify(self, aor: str) -> AorIdentity:
        return normalize_aor(aor, self.policy)

    def history(self, aor: str) -> list[Any]:
        """Every event of the AoR, oldest first (the audit trail)."""
        identity = self.identify(aor)
        events = list(self.repository.event_store.get(identity.id))
        if not events:
            raise UnknownAddressOfRecord(f"no registration history for {identity.uri}")
        return events

    # Commands ------------------------------------------------------------------------

    def register(self, aor: str, request: RegisterRequest, now: float) -> list[Binding]:
        """Apply a REGISTER; returns the AoR's live bindings afterwards."""
        aggregate = self._change(aor, lambda a: a.register(request, self.node, now), now,
                                 create=("register", request.cause))
        return aggregate.live_bindings(now)

    def expire(self, aor_ids: Sequence[UUID], now: float) -> int:
        """Record `expired` for the due bindings of the given AoRs; returns how many."""
        expired = 0
        for aor_id in aor_ids:
            for _ in range(CONFLICT_RETRIES):
                try:
                    aggregate = self.repository.get(aor_id)
                except AggregateNotFoundError:
                    break
                count = aggregate.expire(self.node, now)
                try:
                    self.save(aggregate)
                except IntegrityError:
                    continue
                expired += count
                break
        return expired

    def create_contact(self, aor: str, update: ContactUpdate, callid: str, cause: str,
                       now: float) -> AddressOfRecord:
        return self._change(
            aor, lambda a: a.create_contact(update, callid, self.node, cause, now), now,
            create=("admin", cause),
        )

    def shorten(self, aor: str, contact: str, expires: int, cause: str, now: float) -> AddressOfRecord:
        return self._change(aor, lambda a: a.shorten(contact, expires, self.node, cause, now), now)

    def deactivate(self, aor: str, contact: str, cause: str, now: float) -> AddressOfRecord:
        return self._change(aor, lambda a: a.deactivate(contact, self.node, cause, now), now)

    def reject(self, aor: str, contact: str, cause: str, now: float) -> AddressOfRecord:
        return self._change(aor, lambda a: a.reject(contact, self.node, cause, now), now)

    def probation(self, aor: str, contact: str, retry_after: int, cause: str,
                  now: float) -> AddressOfRecord:
        return self._change(
            aor, lambda a: a.probation(contact, retry_after, self.node, cause, now), now
        )

    def _change(self, aor: str, command: Callable[[AddressOfRecord], None], now: float,
                create: tuple[str, str] | None = None) -> AddressOfRecord:
        """Load the AoR (or start it, if `create` gives origin and cause), command, save."""
        identity = self.identify(aor)
        for attempt in range(CONFLICT_RETRIES):
            try:
                aggregate = self.repository.get(identity.id)
            except AggregateNotFoundError:
                if create is None:
                    raise UnknownAddressOfRecord(f"no registration for {identity.uri}") from None
                origin, cause = create
                aggregate = AddressOfRecord.initialize(identity, origin, self.node, cause, now)
            command(aggregate)
            try:
                self.save(aggregate)
            except IntegrityError:
                if attempt == CONFLICT_RETRIES - 1:
                    raise
                continue
            return aggregate
        raise AssertionError("unreachable")
