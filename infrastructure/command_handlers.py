"""The service layer: one handler per command, one table, one `execute`.

Every entry runs commands through here: the gateway's group commit (many commands in
one unit of work), and `Registrations.run` for the CLI, `handle-notify`, the keeper's
records and the group commit's one-by-one retries (one command per transaction). A
handler loads what it needs through the unit of work, calls the aggregate, and returns
a plain result; nothing is saved here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

from domain import (
    AddressOfRecord,
    Binding,
    DomainError,
    PuaReginfoError,
    UnknownAddressOfRecord,
)
from domain.errors import NotSubscribed, UnknownWatcher
from domain.notify_rfc import NotifyResult
from domain.publication_document import resource_uri
from domain.resource_subscription import ResourceSubscription
from domain.watcher import Watcher
from domain.watcher_machine import TIMEOUT
from infrastructure.commands import (
    ApplyNotify,
    Command,
    CreateContact,
    DeactivateContact,
    EndWatch,
    ExpireDue,
    ImportBindings,
    PutOnProbation,
    RecordNotified,
    RecordSubscriber,
    Register,
    RejectContact,
    RemoveBindings,
    RequestSubscription,
    ShortenContact,
    Watch,
    WithdrawSubscription,
)
from infrastructure.unit_of_work import UnitOfWork
from sip_gateway.server.notify_modes import Applying


def register(uow: UnitOfWork, command: Register) -> list[Binding]:
    app, now = uow.app, uow.now
    identity = app.identify(command.aor)
    if command.request is None:
        found = uow.existing_aor(identity)
        return found.live_bindings(now) if found else []
    aggregate = uow.aor(identity, "register", command.request.cause)
    aggregate.register(command.request, app.node, now, command.max_bindings)
    return aggregate.live_bindings(now)


def apply_notify(uow: UnitOfWork, command: ApplyNotify) -> NotifyResult:
    """Decide a document; a document the domain refuses is -1 and changes nothing."""
    context = command.context
    if context.mode.requires_subscription and not belongs_to_us(uow, command):
        return NotifyResult(-1, "no subscription matches this NOTIFY's dialog",
                            unknown_subscription=True)
    cause = f"NOTIFY subscription={context.subscription_id}"
    applying = Applying(
        subscription_id=context.subscription_id,
        subscription=lambda: uow.subscription(context.subscription_id),
        identify=uow.app.identify, load=lambda identity: uow.aor(identity, "notify", cause),
        node=uow.app.node, now=uow.now, default_expires=context.default_expires,
        cseq=context.cseq, ended_reason=context.ended_reason)
    try:
        return context.mode.apply(command.document, applying)
    except DomainError as error:
        return NotifyResult(-1, str(error))


def belongs_to_us(uow: UnitOfWork, command: ApplyNotify) -> bool:
    """Whether the NOTIFY's dialog is one of our subscriptions: a dialog the keeper holds
    now, or one whose documents we recorded and that has not ended."""
    if command.context.claimed:
        return True
    held = uow.existing_subscription(command.context.subscription_id)
    return held is not None and held.state != "terminated"


def expire_due(uow: UnitOfWork, command: ExpireDue) -> int:
    """Record `expired` for the lapsed bindings of AoRs the view says are due. One whose
    cached state has nothing due was moved on by another writer (a `contact shorten` from
    the CLI, another node): it is read again from the store."""
    expired = 0
    for aor_id in command.aor_ids:
        aggregate = uow.aor_by_id(aor_id)
        if aggregate is None:
            continue
        count = aggregate.expire(uow.app.node, uow.now)
        if not count and uow.forget_if_cached(aor_id):
            aggregate = uow.aor_by_id(aor_id)
            count = aggregate.expire(uow.app.node, uow.now) if aggregate is not None else 0
        expired += count
    return expired


def create_contact(uow: UnitOfWork, command: CreateContact) -> AddressOfRecord:
    aggregate = uow.aor(uow.app.identify(command.aor), "admin", command.cause)
    aggregate.create_contact(command.update, command.callid, uow.app.node, command.cause, uow.now)
    return aggregate


def shorten_contact(uow: UnitOfWork, command: ShortenContact) -> AddressOfRecord:
    aggregate = _existing(uow, command.aor)
    aggregate.shorten(command.contact, command.expires, uow.app.node, command.cause, uow.now)
    return aggregate


def deactivate_contact(uow: UnitOfWork, command: DeactivateContact) -> AddressOfRecord:
    aggregate = _existing(uow, command.aor)
    aggregate.deactivate(command.contact, uow.app.node, command.cause, uow.now)
    return aggregate


def reject_contact(uow: UnitOfWork, command: RejectContact) -> AddressOfRecord:
    aggregate = _existing(uow, command.aor)
    aggregate.reject(command.contact, uow.app.node, command.cause, uow.now)
    return aggregate


def put_on_probation(uow: UnitOfWork, command: PutOnProbation) -> AddressOfRecord:
    aggregate = _existing(uow, command.aor)
    aggregate.probation(command.contact, command.retry_after, uow.app.node, command.cause,
                        uow.now)
    return aggregate


def remove_bindings(uow: UnitOfWork, command: RemoveBindings) -> tuple[AddressOfRecord,
                                                                       list[Binding]]:
    aggregate = _existing(uow, command.aor)
    removed = aggregate.remove(command.contact, command.event, uow.app.node, command.cause,
                               uow.now)
    return aggregate, removed


IMPORTED, PRESENT = "imported", "present"


def import_bindings(uow: UnitOfWork, command: ImportBindings) -> list[str]:
    """Each binding's outcome, in order: IMPORTED, PRESENT (the same registration is
    bound here already), or the reason it was refused (nothing of it recorded)."""
    outcomes = []
    for imported in command.bindings:
        try:
            aggregate = uow.aor(uow.app.identify(imported.aor), "import", imported.cause)
            made = aggregate.import_binding(imported.binding, uow.app.node, imported.cause,
                                            uow.now)
        except DomainError as error:
            outcomes.append(str(error))
            continue
        outcomes.append(IMPORTED if made else PRESENT)
    return outcomes


def _existing(uow: UnitOfWork, aor: str) -> AddressOfRecord:
    identity = uow.app.identify(aor)
    aggregate = uow.existing_aor(identity)
    if aggregate is None:
        raise UnknownAddressOfRecord(f"no registration for {identity.uri}")
    return aggregate


def request_subscription(uow: UnitOfWork, command: RequestSubscription) -> ResourceSubscription:
    resource = _resource(uow, command.resource)
    found = uow.resource_subscription(resource)
    if found is None:
        found = ResourceSubscription.request(resource, command.expires, command.origin,
                                             uow.app.node, uow.now)
        uow.add(found)
    else:
        found.renew(command.expires, command.origin, uow.app.node, uow.now)
    return found


def withdraw_subscription(uow: UnitOfWork, command: WithdrawSubscription) -> ResourceSubscription:
    resource = _resource(uow, command.resource)
    found = uow.resource_subscription(resource)
    if found is None or not found.wanted:
        raise NotSubscribed(f"no subscription to {resource} is kept")
    found.withdraw(command.origin, uow.app.node, uow.now)
    return found


def record_subscriber(uow: UnitOfWork, command: RecordSubscriber) -> None:
    found = uow.resource_subscription(command.resource)
    if found is None:
        return
    node, now = uow.app.node, uow.now
    if command.established is not None:
        found.establish(command.established, node, now)
    if command.failure is not None:
        found.fail(command.failure, command.dialog_lost, node, now)
    if command.closed is not None:
        found.close(command.closed, node, now)


def watch(uow: UnitOfWork, command: Watch) -> Watcher:
    """A new watcher, or the dialog's watcher refreshed; with `expires` 0 it ends at once
    (`timeout`), owing the watcher one final full-state NOTIFY (RFC 6665 4.2.1.1)."""
    dialog, node, now = command.dialog, uow.app.node, uow.now
    found = uow.watcher(dialog.dialog_id)
    if command.refresh:
        if found is None or not found.active:
            raise UnknownWatcher(f"no subscription in dialog {dialog.dialog_id}")
        if command.expires:
            found.refresh(now + command.expires, node, now)
    elif found is None:
        found = Watcher.subscribe(_resource(uow, command.aor), dialog, now + command.expires,
                                  command.peer, node, now)
        uow.add(found)
    elif not found.active:
        raise UnknownWatcher(f"the subscription in dialog {dialog.dialog_id} has ended")
    if not command.expires:
        found.terminate(TIMEOUT, node, now)
    return found


def record_notified(uow: UnitOfWork, command: RecordNotified) -> Watcher:
    found = _watcher(uow, command.dialog_id)
    found.notified(command.version, command.cseq, command.full, uow.app.node, uow.now)
    return found


def end_watch(uow: UnitOfWork, command: EndWatch) -> Watcher:
    found = _watcher(uow, command.dialog_id)
    found.terminate(command.reason, uow.app.node, uow.now)
    return found


def _watcher(uow: UnitOfWork, dialog_id: str) -> Watcher:
    found = uow.watcher(dialog_id)
    if found is None:
        raise UnknownWatcher(f"no subscription in dialog {dialog_id}")
    return found


def _resource(uow: UnitOfWork, uri: str) -> str:
    """The canonical resource URI a subscription is kept under (default_domain applied)."""
    return resource_uri(uri, uow.app.policy.default_domain)


HANDLERS: dict[type, Callable[[UnitOfWork, Any], Any]] = {
    Register: register,
    ApplyNotify: apply_notify,
    ExpireDue: expire_due,
    CreateContact: create_contact,
    ShortenContact: shorten_contact,
    DeactivateContact: deactivate_contact,
    RejectContact: reject_contact,
    PutOnProbation: put_on_probation,
    RemoveBindings: remove_bindings,
    ImportBindings: import_bindings,
    RequestSubscription: request_subscription,
    WithdrawSubscription: withdraw_subscription,
    RecordSubscriber: record_subscriber,
    Watch: watch,
    RecordNotified: record_notified,
    EndWatch: end_watch,
}


def aggregates_named(app: Any, command: Command) -> list[UUID]:
    """The AoRs a REGISTER or a NOTIFY document will load, as far as they can be named
    before it runs (for UnitOfWork.prefetch); a name that does not read is left to the
    command, which refuses it."""
    if isinstance(command, Register):
        texts: Iterable[str | None] = (command.aor,)
    elif isinstance(command, ApplyNotify) and command.document is not None:
        texts = (registration.aor for registration in command.document.registrations)
    else:
        return []
    named = []
    for text in texts:
        if not text:
            continue
        try:
            named.append(app.identify(text).id)
        except (PuaReginfoError, ValueError):
            continue
    return named


def execute(uow: UnitOfWork, command: Command) -> Any:
    """Decide one command inside `uow`; a refused command raises its DomainError."""
    try:
        handler = HANDLERS[type(command)]
    except KeyError:
        raise TypeError(f"not a command: {command!r}") from None
    return handler(uow, command)
