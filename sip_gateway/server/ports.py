"""What the gateway needs from the application, as an interface (imports point downwards)."""

from __future__ import annotations

from typing import Protocol

from domain import Binding, RegisterRequest
from domain.notify_rfc import NotifyResult
from domain.reginfo import ReginfoDocument


class RegistrationPort(Protocol):
    async def register(self, aor: str, request: RegisterRequest | None) -> list[Binding]:
        """Apply a REGISTER (None: only read the bindings); raises DomainError if refused."""

    async def notify(self, document: ReginfoDocument | None, mode: str, subscription_id: str,
                     ended_reason: str | None, require_subscription: bool,
                     cseq: int | None = None) -> NotifyResult:
        """Apply a reginfo document durably; the result code of reginfo_handle_notify.

        With `require_subscription`, a dialog that matches no active subscription of ours
        is refused (`unknown_subscription`), in the same transaction, changing nothing.
        """
