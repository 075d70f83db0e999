"""The RegistrationPort of a UDP worker: every change is decided and committed by serve,
and every nonce use is counted there.

A worker parses, checks and answers requests itself, but holds no store: `register` and
`notify` travel over the process link to serve, whose port (the group-commit executor)
runs them, and come back as a result or as the error the port raised, rebuilt as the
same class (a 423, 403 or 503 is answered by the worker as serve would have answered it).
If the link is gone (serve is stopping or has died), the request is answered 503.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from domain import Binding, PuaReginfoError, RegisterRequest
from domain.notify_rfc import NotifyResult
from infrastructure.process_link import LinkClosed, ProcessLink
from sip_gateway.auth import NonceUse
from sip_gateway.client.subscribe_request import notify_dialog_part
from sip_gateway.errors import ServiceUnavailable
from sip_gateway.server.notify_modes import NotifyIntake
from sip_gateway.sip import SipRequest

AWAY_RETRY_AFTER = 5  # seconds a UA is asked to wait while serve cannot be reached

# Messages between serve and its workers (the first item of each tuple).
CALL, RESULT, ERROR = "call", "result", "error"


def portable(error: BaseException) -> tuple[Any, tuple, dict]:
    """An error as it can cross the link: our own errors keep their class and fields (some
    take keyword arguments that pickling an exception would drop); anything else, a bug
    in serve, crosses as its text only."""
    if isinstance(error, PuaReginfoError):
        return type(error), error.args, dict(vars(error))
    return None, (f"{type(error).__name__}: {error}",), {}


def rebuilt(kind: Any, args: tuple, state: dict) -> BaseException:
    """The error `portable` described."""
    if kind is None:
        return ForwardedError(*args)
    error = kind.__new__(kind)
    error.args = args
    vars(error).update(state)
    return error


class ForwardedError(RuntimeError):
    """serve failed on a worker's request for a reason of its own (logged there): 500."""


class RemotePort:
    """The worker's RegistrationPort (REGISTER) and NotifyApplier (NOTIFY), over a
    process link to serve."""

    def __init__(self, dialogs: bool = False) -> None:
        self.dialogs = dialogs  # serve keeps SUBSCRIBE dialogs: send what claims a NOTIFY
        self.link: ProcessLink | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future] = {}

    def attach(self, link: ProcessLink) -> None:
        self.link = link

    async def register(self, aor: str, request: RegisterRequest | None) -> list[Binding]:
        return await self._call("register", aor, request)

    async def admit(self, use: NonceUse) -> None:
        """A nonce's use (NonceAdmitter): serve holds the nonce counts of all its processes."""
        await self._call("admit", use)

    async def apply(self, intake: NotifyIntake, request: SipRequest | None) -> NotifyResult:
        """A NOTIFY (NotifyApplier): serve claims it for its SUBSCRIBE dialogs, if it keeps
        any, from the headers those read, and applies it."""
        dialog = notify_dialog_part(request) if self.dialogs and request is not None else None
        return await self._call("notify", intake, dialog)

    def on_result(self, number: int, value: Any) -> None:
        future = self._waiting.pop(number, None)
        if future is not None and not future.done():
            future.set_result(value)

    def on_error(self, number: int, kind: Any, args: tuple, state: dict) -> None:
        future = self._waiting.pop(number, None)
        if future is not None and not future.done():
            future.set_exception(rebuilt(kind, args, state))

    def close(self) -> None:
        """serve is gone: every request still waiting is answered 503."""
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(_away())

    async def _call(self, method: str, *args: Any) -> Any:
        if self.link is None or self.link.closed:
            raise _away()
        number = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        try:
            self.link.send((CALL, number, method, args))
        except LinkClosed:
            raise _away() from None
        self._waiting[number] = future
        return await future


def _away() -> ServiceUnavailable:
    return ServiceUnavailable("the serving process cannot be reached",
                              retry_after=AWAY_RETRY_AFTER, cause="serve_away")
