"""The application as the SIP gateway sees it (its RegistrationPort): every change goes
through the group-commit executor, and a store that cannot take it now is a 503."""

from __future__ import annotations

import logging

from domain import Binding, RegisterRequest
from domain.notify_rfc import NotifyResult
from infrastructure.application import StoreContended
from infrastructure.commands import ApplyNotify, NotifyContext, Register, RequestSubscription
from infrastructure.executor import GroupCommitExecutor, StoreBusy, StoreUnavailable
from sip_gateway.client.subscriber import DEFAULT_EXPIRES
from sip_gateway.errors import ServiceUnavailable
from sip_gateway.server.notify_modes import NotifyIntake, NotifyMode

log = logging.getLogger("pua_reginfo.serve")
STORE_RETRY_AFTER = 5  # seconds a UA is asked to wait while the event store is unreachable
BUSY_RETRY_AFTER = 1  # ... while too many requests wait for the store


class ExecutorPort:
    """RegistrationPort on the group-commit executor."""

    def __init__(self, executor: GroupCommitExecutor, notify_mode: NotifyMode, *,
                 max_bindings: int | None, default_expires: int,
                 subscribe_on_register: bool = False):
        self.executor, self.notify_mode = executor, notify_mode
        self.max_bindings, self.default_expires = max_bindings, default_expires
        self.subscribe_on_register = subscribe_on_register
        self._subscribed: set[str] = set()

    async def register(self, aor: str, request: RegisterRequest | None) -> list[Binding]:
        bindings = await self._submit(Register(aor, request, self.max_bindings))
        if self.subscribe_on_register and bindings and request is not None:
            await self._subscribe(aor)
        return bindings

    async def _subscribe(self, aor: str) -> None:
        """subscribe_on_register: keep a reg subscription for every locally registered AoR."""
        if aor in self._subscribed:
            return
        try:
            await self.executor.submit(RequestSubscription(aor, DEFAULT_EXPIRES, "register"))
            self._subscribed.add(aor)
        except Exception as error:  # the REGISTER itself succeeded; retried on the next one
            log.warning("could not subscribe to %s: %s", aor, error)

    async def notify(self, intake: NotifyIntake, claimed: bool) -> NotifyResult:
        context = NotifyContext(self.notify_mode, intake.dialog_id or "unsolicited",
                                intake.ended_reason, intake.cseq, self.default_expires, claimed)
        return await self._submit(ApplyNotify(intake.document, context))

    async def _submit(self, command):
        return await submitted(self.executor, command)


async def submitted(executor: GroupCommitExecutor, command):
    """Run a command; an unreachable store, or an AoR other nodes keep changing, is 503
    with Retry-After (RFC 3261 21.5.4), so the UA retries or fails over to another
    registrar."""
    try:
        return await executor.submit(command)
    except StoreUnavailable as error:
        busy = isinstance(error, StoreBusy)
        raise ServiceUnavailable(str(error), retry_after=BUSY_RETRY_AFTER if busy
                                 else STORE_RETRY_AFTER,
                                 cause="overload" if busy else "store_down") from None
    except StoreContended as error:
        raise ServiceUnavailable(str(error), retry_after=error.retry_after,
                                 cause="contention") from None
