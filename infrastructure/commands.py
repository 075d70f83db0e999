"""Commands the service executes, each a plain function over a UnitOfWork.

The same functions serve single CLI commands (one command, one transaction) and the
gateway's group commit (many commands, one transaction), so both decide identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain import Binding, DomainError, RegisterRequest
from domain.errors import NotSubscribed
from domain.notify_kamailio import apply_kamailio
from domain.notify_rfc import NotifyResult, apply_rfc
from domain.publication_document import resource_uri
from domain.reginfo import ReginfoDocument
from domain.resource_subscription import DialogState, ResourceSubscription
from infrastructure.unit_of_work import UnitOfWork

DEFAULT_SUBSCRIPTION = "default"


@dataclass(frozen=True)
class Register:
    """A REGISTER's binding update (RFC 3261 10.3); `request` None only asks for bindings."""

    aor: str
    request: RegisterRequest | None
    max_bindings: int | None = None


@dataclass(frozen=True)
class NotifyContext:
    """Where a document came from: mode, subscription, and whether the dialog ended."""

    mode: str = "rfc"
    subscription_id: str = DEFAULT_SUBSCRIPTION
    ended_reason: str | None = None  # Subscription-State: terminated;reason=...
    cseq: int | None = None  # the NOTIFY's CSeq number, which orders a dialog's NOTIFYs


@dataclass(frozen=True)
class ApplyNotify:
    """A reginfo document (None: a NOTIFY without body) received in `context`."""

    document: ReginfoDocument | None
    context: NotifyContext
    require_subscription: bool = False  # rfc mode without accept_unsolicited_notify


@dataclass(frozen=True)
class ExpireDue:
    """Record `expired` for the lapsed bindings of these AoRs."""

    aor_ids: tuple[UUID, ...]


@dataclass(frozen=True)
class RequestSubscription:
    """Keep a reg subscription to `resource` (CLI `subscribe`, config, subscribe_on_register)."""

    resource: str
    expires: int
    origin: str = "cli"


@dataclass(frozen=True)
class WithdrawSubscription:
    """End the reg subscription to `resource` (CLI `unsubscribe`)."""

    resource: str
    origin: str = "cli"


@dataclass(frozen=True)
class RecordSubscriber:
    """What the subscription keeper learned about its dialog for `resource`."""

    resource: str
    established: DialogState | None = None
    failure: str | None = None
    dialog_lost: bool = False
    closed: str | None = None


Command = (Register | ApplyNotify | ExpireDue | RequestSubscription | WithdrawSubscription
           | RecordSubscriber)


def register(uow: UnitOfWork, command: Register) -> list[Binding]:
    app, now = uow.app, uow.now
    identity = app.identify(command.aor)
    if command.request is None:
        found = uow.existing_aor(identity)
        return found.live_bindings(now) if found else []
    aggregate = uow.aor(identity, "register", command.request.cause)
    aggregate.register(command.request, app.node, now, command.max_bindings)
    return aggregate.live_bindings(now)


def apply_notify(uow: UnitOfWork, command: ApplyNotify, default_expires: int) -> NotifyResult:
    """Decide a document; raises DomainError (before any change) for an unusable one."""
    app, now, context = uow.app, uow.now, command.context
    cause = f"NOTIFY subscription={context.subscription_id}"
    if command.require_subscription:
        held = uow.existing_subscription(context.subscription_id)
        if held is None or held.state == "terminated":
            return NotifyResult(-1, "no subscription matches this NOTIFY's dialog",
                                unknown_subscription=True)
    subscription = uow.subscription(context.subscription_id) if context.mode == "rfc" else None
    if command.document is None:
        result = NotifyResult(1)
    elif subscription is not None:
        result = apply_rfc(command.document, subscription, identify=app.identify,
                           load=lambda identity: uow.aor(identity, "notify", cause),
                           node=app.node, now=now, default_expires=default_expires,
                           cseq=context.cseq)
    else:
        result = apply_kamailio(command.document, identify=app.identify,
                                load=lambda identity: uow.aor(identity, "notify", cause),
                                node=app.node, now=now, subscription=context.subscription_id)
    if subscription is not None and context.ended_reason is not None:
        subscription.end(context.ended_reason, app.node, now)
    return result


def expire_due(uow: UnitOfWork, command: ExpireDue) -> int:
    expired = 0
    for aor_id in command.aor_ids:
        aggregate = uow.aor_by_id(aor_id)
        if aggregate is not None:
            expired += aggregate.expire(uow.app.node, uow.now)
    return expired


def subscription_resource(uow: UnitOfWork, uri: str) -> str:
    """The canonical resource URI a subscription is kept under (default_domain applied)."""
    return resource_uri(uri, uow.app.policy.default_domain)


def request_subscription(uow: UnitOfWork, command: RequestSubscription) -> ResourceSubscription:
    resource = subscription_resource(uow, command.resource)
    found = uow.resource_subscription(resource)
    if found is None:
        found = ResourceSubscription.request(resource, command.expires, command.origin,
                                             uow.app.node, uow.now)
        uow.add(found)
    else:
        found.renew(command.expires, command.origin, uow.app.node, uow.now)
    return found


def withdraw_subscription(uow: UnitOfWork, command: WithdrawSubscription) -> ResourceSubscription:
    resource = subscription_resource(uow, command.resource)
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


def execute(uow: UnitOfWork, command: Command, default_expires: int):
    """Run one command inside `uow`; DomainError results are returned, not raised."""
    if isinstance(command, Register):
        return register(uow, command)
    if isinstance(command, ApplyNotify):
        try:
            return apply_notify(uow, command, default_expires)
        except DomainError as error:
            return NotifyResult(-1, str(error))
    if isinstance(command, ExpireDue):
        return expire_due(uow, command)
    if isinstance(command, RequestSubscription):
        return request_subscription(uow, command)
    if isinstance(command, WithdrawSubscription):
        return withdraw_subscription(uow, command)
    if isinstance(command, RecordSubscriber):
        return record_subscriber(uow, command)
    raise TypeError(f"not a command: {command!r}")

