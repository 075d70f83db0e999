"""What the gateway needs from the application, as an interface (imports point downwards)."""

from __future__ import annotations

from typing import Protocol

from domain import Binding, RegisterRequest
from domain.notify_rfc import NotifyResult
from sip_gateway.server.notify_modes import NotifyIntake


class RegistrationPort(Protocol):
    async def register(self, aor: str, request: RegisterRequest | None) -> list[Binding]:
        """Apply a REGISTER (None: only read the bindings); raises DomainError if refused."""

    async def notify(self, intake: NotifyIntake, claimed: bool) -> NotifyResult:
        """Apply a NOTIFY's document durably, in the gateway's NOTIFY mode; the result
        code of reginfo_handle_notify. `claimed`: the NOTIFY is on a dialog the
        subscription keeper holds. A mode that requires a subscription refuses a dialog
        that is none of ours (`unknown_subscription`), changing nothing.
        """
