"""Messages: the events one command recorded on one AoR, and whether a node publishes them.

RFC 3680 5.3 reports each change of a registration; the change a PUBLISH (RFC 3903 4.1)
carries is one command (a REGISTER, an administrative action, an expiry run, a NOTIFY)
on one AoR. The notification log does not say where a command's events begin, so they are
regrouped: same AoR, same timestamp, same cause. Every command first records `expired` for
the bindings that lapsed (cause EXPIRY_CAUSE), then its own events, so a run of expiry
events joins the command that follows it on the same AoR at the same time; a run of
expiry events on its own (the sweeper) is a message of its own. Two REGISTERs of one AoR
group-committed together share the timestamp but not the cause: two messages.

A message is published only by the node that decided it, and only when it changed a
local binding (one not learned from a NOTIFY) by a register, admin or expiry event: what
a notifier told us is never published back, which prevents PUBLISH/NOTIFY loops by
origin rather than by a flag.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.address_of_record import EXPIRY_CAUSE
from domain.events import ContactEvent, RegistrationEvent, RegistrationInitialized

LOCAL_ORIGINS = ("register", "admin", "expiry")
AOR_EVENTS = (ContactEvent, RegistrationEvent, RegistrationInitialized)


@dataclass(frozen=True)
class Message:
    """The events one command recorded on one AoR, in log order."""

    aor_id: str
    aor: str
    node: str
    cause: str
    when: datetime
    events: tuple[Any, ...]
    first_notification_id: int | None = None
    last_notification_id: int | None = None

    @property
    def timestamp(self) -> float:
        return self.when.timestamp()

    @property
    def first_version(self) -> int:
        return self.events[0].originator_version

    @property
    def last_version(self) -> int:
        return self.events[-1].originator_version

    @property
    def contact_events(self) -> list[ContactEvent]:
        return [e for e in self.events if isinstance(e, ContactEvent)]

    def changes_local_binding(self) -> bool:
        """A register, admin or expiry event on a binding not learned from a NOTIFY."""
        return any(e.origin in LOCAL_ORIGINS and e.binding.is_local for e in self.contact_events)

    def _continued_by(self, event: Any) -> bool:
        if str(event.originator_id) != self.aor_id or event.timestamp != self.when:
            return False
        return event.cause == self.cause or self.cause == EXPIRY_CAUSE and _only_expiry(self)


def _only_expiry(message: Message) -> bool:
    return all(e.cause == EXPIRY_CAUSE for e in message.events)


def publishes(message: Message, node: str) -> bool:
    """Whether `node` PUBLISHes a document for `message` (RFC 3903 4.1; see module doc)."""
    return message.node == node and message.changes_local_binding()


def group_messages(events: Iterable[Any],
                   notification_ids: Sequence[int] | None = None) -> list[Message]:
    """Split AoR events into messages; other aggregates' events are ignored.

    With `notification_ids` (one per event) each message knows where it starts and ends
    in the notification log.
    """
    messages: list[Message] = []
    for index, event in enumerate(events):
        if not isinstance(event, AOR_EVENTS):
            continue
        nid = None if notification_ids is None else notification_ids[index]
        last = messages[-1] if messages else None
        if last is not None and last._continued_by(event):
            messages[-1] = Message(
                last.aor_id, last.aor, last.node,
                event.cause if last.cause == EXPIRY_CAUSE else last.cause, last.when,
                last.events + (event,), last.first_notification_id, nid)
        else:
            messages.append(Message(str(event.originator_id), event.aor, event.node, event.cause,
                                    event.timestamp, (event,), nid, nid))
    return messages
