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
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, JSONTranscoder

from domain import (
    AddressOfRecord,
    AddressOfRecordSnapshot,
    AorIdentity,
    AorPolicy,
    Binding,
    ContactUpdate,
    PuaReginfoError,
    RegisterRequest,
    UnknownAddressOfRecord,
    normalize_aor,
)
from infrastructure import commands
from infrastructure.transcodings import BindingAsDict
from infrastructure.unit_of_work import UnitOfWork

CONFLICT_ATTEMPTS = 10  # saves of one command before it gives up (StoreContended)
PAUSE_BASE, PAUSE_CAP = 0.002, 0.064  # seconds: the n-th retry waits up to base * 2**n
T = TypeVar("T")


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

    def run(self, work: Callable[[UnitOfWork], T], now: float) -> T:
        """Run `work` in one transaction; on a conflict with a concurrent writer, run it
        again on freshly loaded aggregates."""
        for attempt in range(CONFLICT_ATTEMPTS):
            if attempt:
                time.sleep(conflict_pause(attempt))
            uow = UnitOfWork(self, now)
            result = work(uow)
            try:
                uow.commit()
            except IntegrityError:
                continue
            return result
        raise StoreContended(CONFLICT_ATTEMPTS)

    def register(self, aor: str, request: RegisterRequest, now: float) -> list[Binding]:
        """Apply a REGISTER; returns the AoR's live bindings afterwards."""
        return self.run(lambda uow: commands.register(uow, commands.Register(aor, request)), now)

    def expire(self, aor_ids: Sequence[UUID], now: float) -> int:
        """Record `expired` for the due bindings of the given AoRs; returns how many."""
        return self.run(lambda uow: commands.expire_due(uow, commands.ExpireDue(tuple(aor_ids))), now)

    def create_contact(self, aor: str, update: ContactUpdate, callid: str, cause: str,
                       now: float) -> AddressOfRecord:
        def work(uow: UnitOfWork) -> AddressOfRecord:
            aggregate = uow.aor(self.identify(aor), "admin", cause)
            aggregate.create_contact(update, callid, self.node, cause, now)
            return aggregate
        return self.run(work, now)

    def shorten(self, aor: str, contact: str, expires: int, cause: str, now: float) -> AddressOfRecord:
        return self._admin(aor, lambda a: a.shorten(contact, expires, self.node, cause, now), now)

    def deactivate(self, aor: str, contact: str, cause: str, now: float) -> AddressOfRecord:
        return self._admin(aor, lambda a: a.deactivate(contact, self.node, cause, now), now)

    def reject(self, aor: str, contact: str, cause: str, now: float) -> AddressOfRecord:
        return self._admin(aor, lambda a: a.reject(contact, self.node, cause, now), now)

    def probation(self, aor: str, contact: str, retry_after: int, cause: str,
                  now: float) -> AddressOfRecord:
        return self._admin(aor, lambda a: a.probation(contact, retry_after, self.node, cause, now), now)

    def _admin(self, aor: str, command: Callable[[AddressOfRecord], None],
               now: float) -> AddressOfRecord:
        identity = self.identify(aor)

        def work(uow: UnitOfWork) -> AddressOfRecord:
            aggregate = uow.existing_aor(identity)
            if aggregate is None:
                raise UnknownAddressOfRecord(f"no registration for {identity.uri}")
            command(aggregate)
            return aggregate
        return self.run(work, now)
