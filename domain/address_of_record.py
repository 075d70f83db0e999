"""The AddressOfRecord aggregate: one registration and its contact bindings (RFC 3680 5.1).

Every command first validates against the bindings that are live at `now`, and only
then records events, so a refused command leaves the aggregate untouched. Bindings that
lapsed before `now` are recorded as `expired` (origin `expiry`) before the command's own
events: a REGISTER that arrives after its binding lapsed creates a new binding rather
than refreshing a dead one. Each contact event is checked against the contact machine,
and the registration state follows from the bindings that remain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from uuid import UUID

from eventsourcing.domain import BaseAggregate

from domain.aor import AorIdentity
from domain.binding import Binding, ContactUpdate, RegisterRequest, preference
from domain.binding_refresh import BindingRefresh
from domain.contact_machine import ACTIVE, CONTACT_MACHINE, INIT
from domain.errors import (
    IllegalTransition,
    InvalidRequest,
    OutOfOrderRequest,
    TooManyBindings,
    UnknownContact,
)
from domain.events import (
    CONTACT_EVENTS,
    ContactCreated,
    ContactDeactivated,
    ContactEvent,
    ContactExpired,
    ContactProbation,
    ContactRefreshed,
    ContactRegistered,
    ContactRejected,
    ContactShortened,
    ContactUnregistered,
    RegistrationActivated,
    RegistrationInitialized,
    RegistrationTerminated,
)
from domain.registration_machine import REGISTRATION_MACHINE, TERMINATED
from domain.uri import parse_uri

EXPIRY_CAUSE = "binding lifetime ended"
REMOVALS = {"deactivated": ContactDeactivated, "rejected": ContactRejected}


@dataclass(frozen=True)
class NotifiedChange:
    """One contact event a notifier reported, with the binding as it now stands."""

    event: str
    binding: Binding
    retry_after: int | None = None


def at(now: float) -> datetime:
    return datetime.fromtimestamp(now, timezone.utc)


class AddressOfRecord(BaseAggregate[UUID]):
    """Registration state and bindings of one AoR, changed only through RFC 3680 events."""

    TOPIC = "pua_reginfo:AddressOfRecord"

    def __init__(self, aor: str, key: str, origin: str, node: str, cause: str):
        # origin, node and cause stay in the RegistrationInitialized event (the audit trail).
        self.aor = aor
        self.key = key
        self.state = INIT
        self.bindings: dict[str, Binding] = {}

    @classmethod
    def initialize(cls, identity: AorIdentity, origin: str, node: str, cause: str,
                   now: float) -> AddressOfRecord:
        return cls._create(
            RegistrationInitialized,
            id=identity.id,
            aor=identity.uri,
            key=identity.key,
            origin=origin,
            node=node,
            cause=cause,
            timestamp=at(now),
        )

    # Queries -------------------------------------------------------------------------

    def live_bindings(self, now: float) -> list[Binding]:
        """Bindings not yet lapsed at `now`, highest q first (RFC 3261 16.6 ordering)."""
        live = [b for b in self.bindings.values() if not b.is_due(now)]
        if len(live) < 2:
            return live
        return sorted(live, key=lambda b: preference(b.q, b.contact))

    def _live_by_key(self, now: float) -> dict[str, Binding]:
        return {b.key: b for b in self.live_bindings(now)}

    def find_binding(self, contact: str, now: float) -> Binding:
        target = parse_uri(contact).comparison_key()
        for binding in self.live_bindings(now):
            if parse_uri(binding.contact).comparison_key() == target:
                return binding
        raise UnknownContact(f"{self.aor} has no active binding for {contact}")

    # Commands ------------------------------------------------------------------------

    def is_applied(self, request: RegisterRequest, now: float) -> bool:
        """Whether `request` is the REGISTER that made the bindings it names: the same
        Call-ID and CSeq (RFC 3261 8.1.1.4-5: the same request), every binding it would
        make live with them, none it would remove left. A retransmission the transaction
        layer no longer knows (it arrived after a restart) is answered, not refused."""
        return self._applied(request, self._live_by_key(now))

    @staticmethod
    def _applied(request: RegisterRequest, live: dict[str, Binding]) -> bool:
        if request.wildcard or not request.contacts:
            return False
        made = 0
        for update in request.contacts:
            binding = live.get(update.key)
            if update.expires == 0:
                if binding is not None:
                    return False
                continue
            if binding is None or (binding.callid, binding.cseq) != (request.callid, request.cseq):
                return False
            made += 1
        return made > 0

    def register(self, request: RegisterRequest, node: str, now: float,
                 max_bindings: int | None = None) -> None:
        """Apply a REGISTER's Contact list atomically (RFC 3261 10.3 steps 6-8); a request
        already applied (`is_applied`) changes nothing."""
        live = self._live_by_key(now)
        if self._applied(request, live):
            return
        if request.wildcard:
            if request.contacts:
                raise InvalidRequest("Contact: * must be the only Contact of the REGISTER")
            for binding in live.values():
                self._check_order(binding, request)
            updates: dict[str, ContactUpdate] = {}
        else:
            updates = {}
            for update in request.contacts:
                if update.expires < 0:
                    raise InvalidRequest(f"negative expires for {update.uri}")
                updates[update.key] = update
            for key in updates.keys() & live.keys():
                self._check_order(live[key], request)
            if max_bindings:
                after = {k for k in live if updates.get(k, None) is None or updates[k].expires}
                after |= {k for k, u in updates.items() if u.expires}
                if len(after) > max_bindings:
                    raise TooManyBindings(f"{self.aor} would have {len(after)} bindings "
                                          f"(at most {max_bindings})")

        self.expire(node, now)
        cause = request.cause
        if request.wildcard:
            for binding in live.values():
                self._contact(ContactUnregistered, binding.with_expires(now), "register", node, cause, now)
        for key, update in updates.items():
            existing = live.get(key)
            if existing is None and update.expires == 0:
                continue
            if update.expires == 0:
                self._contact(ContactUnregistered, existing.with_expires(now), "register", node, cause, now)
                continue
            binding = _binding_from(update, request, now, existing)
            if existing is None:
                self._contact(ContactRegistered, binding, "register", node, cause, now)
            elif existing.is_local:
                self._contact(ContactRefreshed, BindingRefresh.between(existing, binding),
                              "register", node, cause, now)
            else:  # a binding a NOTIFY told of, now registered here: recorded whole
                self._contact(ContactRefreshed, binding, "register", node, cause, now)
        self._settle("register", node, cause, now)

    def expire(self, node: str, now: float) -> int:
        """Record `expired` for every binding whose lifetime ended; returns how many."""
        due = [b for b in self.bindings.values() if b.is_due(now)]
        if len(due) > 1:
            due.sort(key=lambda b: b.expires)
        for binding in due:
            self._contact(ContactExpired, binding, "expiry", node, EXPIRY_CAUSE, now)
        if due:
            self._settle("expiry", node, EXPIRY_CAUSE, now)
        return len(due)

    def create_contact(
        self, update: ContactUpdate, callid: str, node: str, cause: str, now: float
    ) -> None:
        """Administrative creation of a binding (event `created`)."""
        if update.expires <= 0:
            raise InvalidRequest("a created binding needs a positive expires")
        key = update.key
        live = self._live_by_key(now)
        if key in live:
            raise IllegalTransition(
                f"{update.uri} is already bound to {self.aor}: 'created' applies only to a "
                "new binding (contact machine: no 'created' from 'active')"
            )
        self.expire(node, now)
        request = RegisterRequest(callid=callid, cseq=1)
        binding = _binding_from(update, request, now, None)
        self._contact(ContactCreated, binding, "admin", node, cause, now)
        self._settle("admin", node, cause, now)

    def import_binding(self, binding: Binding, node: str, cause: str, now: float) -> bool:
        """Record a binding another registrar holds (event `created`, origin `import`):
        False, and nothing recorded, when it is bound here already with the same Call-ID
        and CSeq (the same registration, imported before)."""
        if binding.is_due(now):
            raise InvalidRequest(f"{binding.contact} has expired")
        held = self._live_by_key(now).get(binding.key)
        if held is not None:
            if (held.callid, held.cseq) == (binding.callid, binding.cseq):
                return False
            raise IllegalTransition(
                f"{binding.contact} is bound to {self.aor} already, by Call-ID "
                f"{held.callid} CSeq {held.cseq}: 'created' applies only to a new binding")
        self.expire(node, now)
        self._contact(ContactCreated, binding, "import", node, cause, now)
        self._settle("import", node, cause, now)
        return True

    def shorten(self, contact: str, expires: int, node: str, cause: str, now: float) -> None:
        """Bring a binding's expiry forward (event `shortened`), e.g. to force re-auth."""
        binding = self.find_binding(contact, now)
        if expires <= 0:
            raise InvalidRequest("shorten needs a positive expires; deactivate ends a binding now")
        if now + expires >= binding.expires:
            raise InvalidRequest(
                f"shorten to {expires} s would not shorten {binding.contact} "
                f"({binding.remaining(now)} s left)"
            )
        self.expire(node, now)
        self._contact(ContactShortened, binding.with_expires(now + expires), "admin", node, cause, now)

    def deactivate(self, contact: str, node: str, cause: str, now: float) -> None:
        """Remove a binding; the UA should re-register at once (event `deactivated`)."""
        self._terminate(ContactDeactivated, [self.find_binding(contact, now)], node, cause, now)

    def reject(self, contact: str, node: str, cause: str, now: float) -> None:
        """Remove a binding; the UA should not re-register (event `rejected`)."""
        self._terminate(ContactRejected, [self.find_binding(contact, now)], node, cause, now)

    def remove(self, contact: str | None, event: str, node: str, cause: str,
               now: float) -> list[Binding]:
        """Remove one binding or, without `contact`, every live one (what usrloc's
        ul.rm_contact and ul.rm do), each with `event`: `deactivated` (re-register now)
        or `rejected` (do not). Returns the bindings removed."""
        if event not in REMOVALS:
            raise InvalidRequest(f"a removal is 'deactivated' or 'rejected', not {event!r}")
        bindings = [self.find_binding(contact, now)] if contact else self.live_bindings(now)
        if not bindings:
            raise UnknownContact(f"{self.aor} has no active binding")
        self._terminate(REMOVALS[event], bindings, node, cause, now)
        return bindings

    def probation(self, contact: str, retry_after: int, node: str, cause: str, now: float) -> None:
        """Remove a binding; the UA may re-register after `retry_after` s (`probation`)."""
        if retry_after < 0:
            raise InvalidRequest("retry-after must not be negative")
        self._terminate(ContactProbation, [self.find_binding(contact, now)], node, cause, now,
                        retry_after=retry_after)

    def apply_notified(self, changes: Sequence[NotifiedChange], node: str, cause: str,
                       now: float) -> None:
        """Record what a reginfo NOTIFY reported for this AoR (origin `notify`).

        The applier has decided each change against the live bindings; the registration
        machine is settled once, after the whole batch.
        """
        self.expire(node, now)
        for change in changes:
            extra = {} if change.retry_after is None else {"retry_after": change.retry_after}
            self._contact(CONTACT_EVENTS[change.event], change.binding, "notify", node, cause,
                          now, **extra)
        self._settle("notify", node, cause, now)

    # Internals -----------------------------------------------------------------------

    def _terminate(self, event: type[ContactEvent], bindings: list[Binding], node: str,
                   cause: str, now: float, **extra: int) -> None:
        self.expire(node, now)
        for binding in bindings:
            self._contact(event, binding.with_expires(now), "admin", node, cause, now, **extra)
        self._settle("admin", node, cause, now)

    @staticmethod
    def _check_order(binding: Binding, request: RegisterRequest) -> None:
        if binding.callid == request.callid and request.cseq <= binding.cseq:
            raise OutOfOrderRequest(
                f"CSeq {request.cseq} is not above {binding.cseq} for Call-ID "
                f"{request.callid} (binding {binding.contact})"
            )

    def _contact(self, event: type[ContactEvent], binding: Binding | BindingRefresh,
                 origin: str, node: str, cause: str, now: float, **extra: int) -> None:
        state = ACTIVE if binding.key in self.bindings else INIT
        CONTACT_MACHINE.next_state(state, event.EVENT)
        self.trigger_event(event, aor=self.aor, binding=binding, origin=origin, node=node,
                           cause=cause, timestamp=at(now), **extra)

    def _settle(self, origin: str, node: str, cause: str, now: float) -> None:
        """Move the registration machine to match the bindings that remain."""
        if self.bindings and self.state != ACTIVE:
            state = self.state
            if state == TERMINATED:
                state = REGISTRATION_MACHINE.next_state(state, "reset")
            REGISTRATION_MACHINE.next_state(state, "activated")
            event: type = RegistrationActivated
        elif not self.bindings and self.state == ACTIVE:
            REGISTRATION_MACHINE.next_state(self.state, "terminated")
            event = RegistrationTerminated
        else:
            return
        self.trigger_event(event, aor=self.aor, origin=origin, node=node, cause=cause,
                           timestamp=at(now))


def _binding_from(update: ContactUpdate, request: RegisterRequest, now: float,
                  existing: Binding | None) -> Binding:
    binding = Binding(
        contact=update.uri,
        expires=now + update.expires,
        callid=request.callid,
        cseq=request.cseq,
        registered_at=existing.registered_at if existing else now,
        q=update.q,
        received=request.received,
        path=request.path,
        user_agent=request.user_agent,
        instance=update.instance,
        reg_id=update.reg_id,
        methods=update.methods,
        flags=update.flags,
        cflags=update.cflags,
        socket=request.socket,
        display_name=update.display_name,
        params=update.params,
        key=update.key if existing is None else existing.key,
    )
    return binding

