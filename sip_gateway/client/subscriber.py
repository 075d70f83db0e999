"""The subscriber side of one reg subscription (RFC 6665 4.1, RFC 3680 3), without IO.

Theory of operation. `next_request` plans the initial SUBSCRIBE (new Call-ID and From tag,
CSeq 1): `subscribing`. Its 2xx, or a NOTIFY overtaking it (RFC 6665 4.1.2.4), establishes
the dialog: the notifier's tag, its Contact as remote target, the route set. The 2xx's
Expires is authoritative (4.1.2.1) and a NOTIFY's `expires` updates it (4.1.3); `active`
refreshes in the dialog (`refreshing`, CSeq+1) at expiry minus max(5 s, 10 %), but not
before half of the lifetime has passed (4.1.2.2). A refresh answered 481 means the notifier
lost the subscription: a new initial SUBSCRIBE at once, fresh Call-ID and tag (4.1.2.2); any
other failed refresh leaves the subscription valid until it expires (4.1.2.2), so it is
retried in the dialog after back-off, and after the expiry comes `waiting` for a new
initial SUBSCRIBE. 423 Interval Too Brief retries at once with Min-Expires; 489 Bad Event
ends everything (the notifier has no `reg`); other failures and timeouts wait Retry-After,
else back off (2 s doubling to 600 s, full jitter). A 2xx with no NOTIFY within Timer N
(64*T1) is a failed attempt (4.1.2.4). `Subscription-State: terminated` (4.1.3) ends the
dialog: deactivated and timeout re-subscribe at once; rejected, noresource and invariant
never; any other reason after retry-after or back-off. Ended while a SUBSCRIBE is in
flight, the machine is `draining` until that request is answered, so at most one request
is ever in flight. `unsubscribe` sends Expires 0 in the dialog (`unsubscribing`, 4.1.2.3),
or ends at once without one. `terminated` is final; it keeps the last dialog's identity so
that the final NOTIFY still matches.
Nothing here reads a clock or a socket: `now` comes in, plans go out, and the shell calls
`next_request(now)` once `now` reaches `next_deadline()` (that also fires Timer N and expiry).
"""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Callable, Sequence

from domain.resource_subscription import DialogState
from domain.subscription import dialog_id
from sip_gateway.errors import Misuse
from sip_gateway.sip import SubscriptionState, TimerValues
from sip_gateway.sip.machine import step
from sip_gateway.sip.grammar import is_token
from sip_gateway.client.subscribe_request import (
    INITIAL,
    REFRESH,
    SUBSCRIBE_BACKOFF,
    UNSUBSCRIBE,
    Backoff,
    SubscribePlan,
    build_subscribe,
    refresh_lead,
    route_values,
    uri_of,
)

__all__ = [
    "DEFAULT_EXPIRES", "SUBSCRIBER_MACHINE", "SUBSCRIBE_BACKOFF", "Backoff", "SubscribePlan", "SubscriberDialog",
    "SubscriberMisuse", "build_subscribe", "refresh_lead",
]

DEFAULT_EXPIRES = 3761  # RFC 3680's default duration, just above the 3600 s of REGISTER
CALL_ID_BYTES, TAG_BYTES = 16, 8

IDLE, SUBSCRIBING, ACTIVE, REFRESHING = "idle", "subscribing", "active", "refreshing"
DRAINING, WAITING, UNSUBSCRIBING, TERMINATED = "draining", "waiting", "unsubscribing", "terminated"
IN_FLIGHT = frozenset({SUBSCRIBING, REFRESHING, DRAINING, UNSUBSCRIBING})

SEND_INITIAL, SEND_REFRESH, SEND_UNSUBSCRIBE = "send_initial", "send_refresh", "send_unsubscribe"
ACCEPTED, TOO_BRIEF, GONE, BAD_EVENT, FAILED = "2xx", "423", "481", "489", "failed"
NOTIFIED, ENDED_RETRY, ENDED_FINAL = "notified", "ended_retry", "ended_final"
TIMER_N, EXPIRED, LOCAL_END = "timer_n", "expired", "local_end"

# (state, event) -> next state. A final response in `draining` or `unsubscribing` only
# closes the request; events not listed cannot happen in that state.
SUBSCRIBER_MACHINE: dict[tuple[str, str], str] = {
    (IDLE, SEND_INITIAL): SUBSCRIBING,
    (IDLE, LOCAL_END): TERMINATED,
    (SUBSCRIBING, ACCEPTED): ACTIVE,
    (SUBSCRIBING, TOO_BRIEF): WAITING,
    (SUBSCRIBING, FAILED): WAITING,
    (SUBSCRIBING, BAD_EVENT): TERMINATED,
    (SUBSCRIBING, NOTIFIED): SUBSCRIBING,
    (SUBSCRIBING, ENDED_RETRY): DRAINING,
    (SUBSCRIBING, ENDED_FINAL): TERMINATED,
    (ACTIVE, SEND_REFRESH): REFRESHING,
    (ACTIVE, SEND_UNSUBSCRIBE): UNSUBSCRIBING,
    (ACTIVE, NOTIFIED): ACTIVE,
    (ACTIVE, ENDED_RETRY): WAITING,
    (ACTIVE, ENDED_FINAL): TERMINATED,
    (ACTIVE, TIMER_N): WAITING,
    (ACTIVE, EXPIRED): WAITING,
    (REFRESHING, ACCEPTED): ACTIVE,
    (REFRESHING, TOO_BRIEF): ACTIVE,
    (REFRESHING, FAILED): ACTIVE,
    (REFRESHING, GONE): WAITING,
    (REFRESHING, BAD_EVENT): TERMINATED,
    (REFRESHING, NOTIFIED): REFRESHING,
    (REFRESHING, ENDED_RETRY): DRAINING,
    (REFRESHING, ENDED_FINAL): TERMINATED,
    **{(DRAINING, event): WAITING for event in (ACCEPTED, TOO_BRIEF, GONE, FAILED)},
    (DRAINING, BAD_EVENT): TERMINATED,
    (WAITING, SEND_INITIAL): SUBSCRIBING,
    (WAITING, LOCAL_END): TERMINATED,
    **{(UNSUBSCRIBING, event): TERMINATED
       for event in (ACCEPTED, TOO_BRIEF, GONE, BAD_EVENT, FAILED, ENDED_RETRY, ENDED_FINAL)},
    (UNSUBSCRIBING, NOTIFIED): UNSUBSCRIBING,
}

AT_ONCE_REASONS = frozenset({"deactivated", "timeout"})  # RFC 6665 4.1.3
FINAL_REASONS = frozenset({"rejected", "noresource", "invariant"})
_SYSTEM_RANDOM = random.SystemRandom()


class SubscriberMisuse(Misuse):
    """Our own code broke the subscriber machine's contract (a bug, not a peer's fault)."""


class SubscriberDialog:
    """One reg subscription of `subscriber` (server_address) to `resource` (RFC 6665 4.1)."""

    def __init__(
        self, resource: str, subscriber: str, expires: int = DEFAULT_EXPIRES, *,
        start_at: float = -math.inf, backoff: Backoff = SUBSCRIBE_BACKOFF,
        timers: TimerValues = TimerValues(),
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
        uniform: Callable[[], float] = _SYSTEM_RANDOM.random,
    ) -> None:
        self.resource, self.subscriber, self.requested_expires = resource, subscriber, expires
        self.backoff, self.timers = backoff, timers
        self._random_bytes, self._uniform = random_bytes, uniform
        self.state = IDLE
        self.failures = 0  # consecutive; a 2xx resets it
        self.last_error: str | None = None
        self.in_flight: SubscribePlan | None = None
        self.expires_at: float | None = None
        self.notifier_state: str | None = None  # as last notified: active, pending ...
        self.remote_target: str | None = None
        self.route_set: tuple[str, ...] = ()
        self._call_id: str | None = None
        self._local_tag = ""
        self._remote_tag: str | None = None
        self._cseq = 0
        self._due_at: float | None = start_at  # when next_request has something to send
        self._timer_n_at: float | None = None
        self._full_state_wanted = self._unsubscribe_wanted = False

    @classmethod
    def resume(cls, resource: str, subscriber: str, expires: int, dialog: DialogState,
               now: float, **options) -> SubscriberDialog:
        """Carry on a dialog recorded before a restart (or by another node): refreshed at
        once, which proves it still exists and points the notifier at this node's Contact
        (RFC 6665 4.1.2.1); a new dialog if it has expired."""
        self = cls(resource, subscriber, expires, **options)
        if dialog.expires_at <= now:
            return self
        self.state = ACTIVE
        self._call_id, self._local_tag, self._remote_tag = (
            dialog.call_id, dialog.local_tag, dialog.remote_tag)
        self.remote_target, self.route_set = dialog.remote_target, tuple(dialog.route_set)
        self._cseq, self.expires_at = dialog.cseq, dialog.expires_at
        self._due_at = now  # refresh at once: it checks the dialog and retargets it here
        return self

    @property
    def dialog_state(self) -> DialogState | None:
        """The established dialog as a restart needs it; None without one."""
        if (self.state not in (ACTIVE, REFRESHING) or self._call_id is None
                or self._remote_tag is None or self.expires_at is None):
            return None
        return DialogState(self._call_id, self._local_tag, self._remote_tag,
                           self.remote_target, self.route_set, self._cseq, self.expires_at)

    @property
    def call_id(self) -> str | None:
        return self._call_id

    @property
    def dialog_id(self) -> str | None:
        if self._call_id is None or self._remote_tag is None:
            return None
        return dialog_id(self._call_id, self._local_tag, self._remote_tag)

    def next_deadline(self) -> float | None:
        """When to call next_request; None while a request is in flight, or once terminated."""
        if self.state in IN_FLIGHT or self.state == TERMINATED:
            return None
        times = [self._due_at]
        if self.state == ACTIVE:
            times += [self.expires_at, self._timer_n_at]
        return min(time for time in times if time is not None)

    # -- commands ----------------------------------------------------------------------

    def next_request(self, now: float) -> SubscribePlan | None:
        """The SUBSCRIBE due by `now`, marked in flight; fires Timer N and expiry first."""
        if self.state == ACTIVE and self._timer_n_at is not None and self._timer_n_at <= now:
            self._fail(TIMER_N, "no NOTIFY within Timer N", None, now)
        elif self.state == ACTIVE and self.expires_at is not None and self.expires_at <= now:
            self.last_error = "expired before a refresh succeeded"
            self._step(EXPIRED)
            self._wait(max(self._due_at or now, now), now)
        if self.state not in (IDLE, WAITING, ACTIVE) or self._due_at is None or self._due_at > now:
            return None
        if self.state != ACTIVE:
            return self._send(SEND_INITIAL, INITIAL, self.requested_expires, now)
        if self.state == ACTIVE and self._unsubscribe_wanted:
            return self._send(SEND_UNSUBSCRIBE, UNSUBSCRIBE, 0, now)
        return self._send(SEND_REFRESH, REFRESH, self.requested_expires, now)

    def want_full_state(self, now: float) -> None:
        """Ask for full state (after a version gap, RFC 3680): an in-dialog refresh soon."""
        if self.state in (SUBSCRIBING, ACTIVE, REFRESHING):
            self._full_state_wanted = True
            self._settle(now)

    def unsubscribe(self, now: float) -> None:
        """End the subscription: Expires 0 in the dialog, or at once without one (4.1.2.3)."""
        if self.state not in (UNSUBSCRIBING, TERMINATED):
            self._unsubscribe_wanted = True
            self._settle(now)

    # -- what the notifier said --------------------------------------------------------

    def on_response(
        self, status: int, *, to_tag: str | None = None, contact: str | None = None,
        expires: int | None = None, min_expires: int | None = None,
        retry_after: int | None = None, record_route: Sequence[str] = (), now: float,
    ) -> None:
        """The final response to the request in flight (provisional ones change nothing)."""
        plan = self.in_flight
        if plan is None or status < 200:
            return
        self.in_flight = None
        granted = plan.expires if expires is None else expires
        to_tag = to_tag if to_tag and is_token(to_tag) else None
        success = 200 <= status < 300
        if success and plan.kind != UNSUBSCRIBE and granted == 0:
            if plan.kind == REFRESH:
                self.expires_at = now  # the notifier ended it: the dialog goes at expiry
            event, error = FAILED, f"{status} with Expires: 0"
        elif success and to_tag is None and self._remote_tag is None:
            event, error = FAILED, f"{status} without a To tag"
        elif success:
            event, error = ACCEPTED, None
        elif status == 423 and min_expires is not None and min_expires > plan.expires:
            event, error = TOO_BRIEF, f"423, Min-Expires {min_expires}"
            self.requested_expires = min_expires
        elif status == 481 and plan.kind != INITIAL:
            event, error = GONE, "481 in the dialog: the notifier lost the subscription"
        elif status == 489:
            event, error = BAD_EVENT, "489: the notifier does not support the reg package"
        else:
            event, error = FAILED, f"{status} response"
        if event != ACCEPTED or self.state in (DRAINING, UNSUBSCRIBING):
            self._answered(event, error, retry_after, now)
            return
        self._step(ACCEPTED)
        if self._remote_tag is None:
            self._remote_tag = to_tag
            self.route_set = route_values(reversed(record_route))  # RFC 3261 12.1.2
        self._retarget(contact)
        self.failures = 0
        self._set_lifetime(granted, now)

    def on_timeout(self, now: float, reason: str = "timeout") -> None:
        """The request in flight timed out or could not be sent (RFC 3261 8.1.3.1: 408);
        `reason` says which, for the operator (`status`)."""
        if self.in_flight is not None:
            self.in_flight = None
            self._answered(FAILED, reason, None, now)

    def on_notify(
        self, *, call_id: str, from_tag: str | None, to_tag: str | None,
        subscription_state: SubscriptionState, contact: str | None = None, now: float,
        record_route: Sequence[str] = (),
    ) -> bool:
        """Whether the NOTIFY belongs to this subscription; if so, act on it (4.1.2.4, 4.1.3)."""
        if not self._matches(call_id, from_tag, to_tag):
            return False
        if self.state == TERMINATED:
            return True
        if self._remote_tag is None:  # the NOTIFY overtook the 2xx: it makes the dialog
            self._remote_tag = from_tag
            self.route_set = route_values(record_route)  # RFC 3261 12.1.1
        self._timer_n_at = None
        self._retarget(contact)
        state = subscription_state
        if state.state == "terminated" or state.expires == 0:
            reason = state.reason if state.state == "terminated" else None
            self._ended(reason, state.retry_after, now)
        else:
            self._step(NOTIFIED)
            if self.state != UNSUBSCRIBING:
                self.notifier_state = state.state
                if state.expires is not None:
                    self._set_lifetime(state.expires, now)
        return True

    # -- the machine -------------------------------------------------------------------

    def _step(self, event: str) -> None:
        self.state = step(SUBSCRIBER_MACHINE, self.state, event, SubscriberMisuse,
                          "subscriber dialog")
        if self.state == TERMINATED:  # a late answer to a request in flight is ignored
            self.in_flight = self._due_at = None

    def _send(self, event: str, kind: str, expires: int, now: float) -> SubscribePlan:
        if kind == INITIAL and self._call_id is None:
            self._call_id = self._random_bytes(CALL_ID_BYTES).hex()
            self._local_tag = self._random_bytes(TAG_BYTES).hex()
            self._cseq = 0
        if kind == INITIAL:
            self._timer_n_at = now + self.timers.f
        self._step(event)
        self._cseq += 1
        self._due_at = None
        if kind != UNSUBSCRIBE:
            self._full_state_wanted = False  # a SUBSCRIBE is answered with full state
        in_dialog = kind != INITIAL
        self.in_flight = SubscribePlan(
            kind, self.remote_target or self.resource if in_dialog else self.resource,
            self.resource, self.subscriber, self._call_id, self._local_tag,
            self._remote_tag if in_dialog else None, self._cseq, expires,
            self.route_set if in_dialog else (),
        )
        return self.in_flight

    def _answered(self, event: str, error: str | None, retry_after: int | None,
                  now: float) -> None:
        """The answer to the request in flight, unless a 2xx that keeps the subscription."""
        if self.state in (DRAINING, UNSUBSCRIBING):  # the dialog has ended meanwhile
            self._step(event)
            if self.state == WAITING:
                self._wait(max(self._due_at or now, now), now)  # the retry time stands
        elif event == FAILED:
            self._fail(FAILED, error, retry_after, now)
        else:
            self.last_error = error
            self._step(event)
            if self.state == WAITING:  # 481: at once, fresh ids; 423: same Call-ID, CSeq+1
                self._wait(now, now, keep_ids=event == TOO_BRIEF)
            elif self.state == ACTIVE:  # 423 to a refresh: again at once
                self._due_at = now
                self._settle(now)

    def _fail(self, event: str, error: str | None, retry_after: int | None, now: float) -> None:
        self.last_error = error
        self.failures += 1
        delay = self._delay(retry_after)
        self._step(event)
        if self.state == WAITING:
            self._wait(now + delay, now)
        else:  # a failed refresh: valid until it expires (RFC 6665 4.1.2.2), retried in it
            self._due_at = now + delay
            self._settle(now)

    def _ended(self, reason: str | None, retry_after: int | None, now: float) -> None:
        if self.state != UNSUBSCRIBING:
            self.last_error = "terminated" + (f";reason={reason}" if reason else "")
        self._step(ENDED_FINAL if reason in FINAL_REASONS else ENDED_RETRY)
        if self.state == TERMINATED:
            return
        if reason in AT_ONCE_REASONS:
            delay = float(retry_after or 0)
        else:
            self.failures += 1
            delay = self._delay(retry_after)
        self._wait(now + delay, now)

    def _delay(self, retry_after: int | None) -> float:
        if retry_after is not None:
            return float(retry_after)
        return self.backoff.ceiling(self.failures) * self._uniform()

    def _wait(self, due_at: float, now: float, *, keep_ids: bool = False) -> None:
        """Forget the dialog; the next initial SUBSCRIBE is due at `due_at`."""
        self._remote_tag = self.remote_target = self.notifier_state = None
        self.expires_at = self._timer_n_at = None
        self.route_set = ()
        if not keep_ids:
            self._call_id = None
        self._due_at = due_at
        self._settle(now)

    def _settle(self, now: float) -> None:
        """Apply the local wishes that wait for a quiet moment."""
        if self._unsubscribe_wanted and self.state in (IDLE, WAITING):
            self._step(LOCAL_END)
        elif self._unsubscribe_wanted and self.state == ACTIVE:
            self._due_at = now
        elif self._full_state_wanted and self.state == ACTIVE and self.failures == 0:
            self._due_at = min(self._due_at if self._due_at is not None else now, now)

    def _matches(self, call_id: str, from_tag: str | None, to_tag: str | None) -> bool:
        if self.state in (IDLE, WAITING, DRAINING) or self._call_id is None:
            return False
        if call_id != self._call_id or to_tag != self._local_tag:
            return False
        if not from_tag or not is_token(from_tag):
            return False
        if self._remote_tag is None:
            return self.state == SUBSCRIBING
        return from_tag == self._remote_tag

    def _set_lifetime(self, seconds: int, now: float) -> None:
        """A granted lifetime; the refresh is due before it ends, unless backing off."""
        self.expires_at = now + seconds
        if self.state == ACTIVE and self.failures == 0:
            self._due_at = self.expires_at - refresh_lead(seconds)
            self._settle(now)

    def _retarget(self, contact: str | None) -> None:
        """A 2xx or NOTIFY Contact is the new remote target (RFC 6665 4.1.2.4, 3261 12.2)."""
        uri = uri_of(contact) if contact else None
        if uri is not None:
            self.remote_target = uri
