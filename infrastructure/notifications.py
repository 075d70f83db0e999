"""Applying one reginfo document in its own transaction (the `handle-notify` path).

The decision is `commands.apply_notify`, the same function the gateway's group commit
runs; here it gets a transaction of its own. A document is applied entirely or not at
all, and a conflict with a concurrent writer retries it on fresh state.
"""

from __future__ import annotations

from domain.notify_rfc import NotifyResult
from domain.reginfo import ReginfoDocument
from infrastructure.application import Registrations
from infrastructure.commands import DEFAULT_SUBSCRIPTION, ApplyNotify, NotifyContext, execute

MODES = ("rfc", "kamailio")

__all__ = ["DEFAULT_SUBSCRIPTION", "MODES", "NotifyContext", "apply_document"]


def apply_document(app: Registrations, document: ReginfoDocument | None, context: NotifyContext,
                   now: float, default_expires: int = 3600) -> NotifyResult:
    """Apply one reginfo document (None: a NOTIFY without body) and store the outcome."""
    command = ApplyNotify(document, context)
    return app.run(lambda uow: execute(uow, command, default_expires), now)
