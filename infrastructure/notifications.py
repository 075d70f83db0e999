"""Applying a reginfo document: load what it touches, decide, save it all in one go.

Every AoR the document names (and, for full state, every AoR its subscription told us
about) is loaded once; the mode's applier decides; then the touched AoRs and the
Subscription are saved in a single transaction, so a document is applied entirely or not
at all. A conflict with a concurrent writer retries the whole document on fresh state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from domain import AddressOfRecord, AorIdentity, DomainError
from domain.notify_kamailio import apply_kamailio
from domain.notify_rfc import NotifyResult, apply_rfc
from domain.reginfo import ReginfoDocument
from domain.subscription import Subscription, subscription_aggregate_id
from infrastructure.application import CONFLICT_RETRIES, Registrations

MODES = ("rfc", "kamailio")
DEFAULT_SUBSCRIPTION = "default"


@dataclass(frozen=True)
class NotifyContext:
    """Where a document came from: mode, subscription, and whether the dialog ended."""

    mode: str = "rfc"
    subscription_id: str = DEFAULT_SUBSCRIPTION
    ended_reason: str | None = None  # Subscription-State: terminated;reason=...


def apply_document(app: Registrations, document: ReginfoDocument | None, context: NotifyContext,
                   now: float, default_expires: int = 3600) -> NotifyResult:
    """Apply one reginfo document (None: a NOTIFY without body) and store the outcome."""
    for attempt in range(CONFLICT_RETRIES):
        loaded: dict[Any, tuple[AddressOfRecord, bool]] = {}

        def load(identity: AorIdentity) -> AddressOfRecord:
            if identity.id not in loaded:
                try:
                    loaded[identity.id] = (app.repository.get(identity.id), False)
                except AggregateNotFoundError:
                    fresh = AddressOfRecord.initialize(identity, "notify", app.node,
                                                       f"NOTIFY subscription={context.subscription_id}", now)
                    loaded[identity.id] = (fresh, True)
            return loaded[identity.id][0]

        subscription = _subscription(app, context, now) if context.mode == "rfc" else None
        try:
            if document is None:
                result = NotifyResult(1)
            elif subscription is not None:
                result = apply_rfc(document, subscription, identify=app.identify, load=load,
                                   node=app.node, now=now, default_expires=default_expires)
            else:
                result = apply_kamailio(document, identify=app.identify, load=load,
                                        node=app.node, now=now,
                                        subscription=context.subscription_id)
        except DomainError as error:
            return NotifyResult(-1, str(error))  # nothing is saved
        if subscription is not None and context.ended_reason is not None:
            subscription.end(context.ended_reason, app.node, now)
        changed = [agg for agg, new in loaded.values() if len(agg.pending_events) > (1 if new else 0)]
        if subscription is not None and subscription.pending_events:
            changed.append(subscription)
        try:
            if changed:
                app.save(*changed)
        except IntegrityError:
            if attempt == CONFLICT_RETRIES - 1:
                raise
            continue
        return result
    raise AssertionError("unreachable")


def _subscription(app: Registrations, context: NotifyContext, now: float) -> Subscription:
    try:
        return app.repository.get(subscription_aggregate_id(context.subscription_id))
    except AggregateNotFoundError:
        return Subscription.observe(context.subscription_id, app.node, now)
