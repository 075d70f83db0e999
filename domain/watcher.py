"""One watcher of an AoR's reg state, seen from the notifier side (RFC 6665 4.2, RFC 3680 5).

Theory of operation. A SUBSCRIBE we accept records `WatcherSubscribed`: the AoR, the
dialog as a notifier holds it (Call-ID, our tag, the watcher's tag, the watcher's Contact
as remote target, the Record-Route set, the transport, and for TCP the connection it came
on), its expiry, and whether the watcher is a sync peer (it then hears only this node's
own changes, so that two nodes subscribed to each other never echo). Every NOTIFY sent
records `WatcherNotified` with the document version it carried and its CSeq: RFC 3680 5.2
numbers each watcher's documents from 0, one by one, so a restart goes on with the next
number and the watcher sees no gap. A refresh in the dialog records `WatcherRefreshed` (a
new expiry, and a full-state NOTIFY follows); `WatcherTerminated` ends it with its
Subscription-State reason (domain/watcher_machine.py), after which only the final NOTIFY
may still be sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import AggregateCreated, AggregateEvent, BaseAggregate
from eventsourcing.utils import register_topic

from domain.address_of_record import at
from domain.binding import MAX_CSEQ
from domain.errors import IllegalTransition, InvalidRequest
from domain.publication_document import MAX_VERSION
from domain.subscription import dialog_id
from domain.watcher_machine import (
    ACTIVE,
    FINAL_NOTIFY,
    REASONS,
    TERMINATED,
    WATCHER_MACHINE,
)

MACHINE = WATCHER_MACHINE
TRANSPORTS = ("udp", "tcp")


def watcher_id(dialog_id: str) -> UUID:
    return uuid5(NAMESPACE_URL, "reg-watcher:" + dialog_id)


@dataclass(frozen=True)
class WatcherDialog:
    """The notifier's half of a subscription dialog (RFC 3261 12.1.1, RFC 6665 4.2.1)."""

    call_id: str
    local_tag: str  # ours: the To tag of our 200
    remote_tag: str  # the watcher's From tag
    watcher: str  # the watcher's From URI (who watches)
    remote_target: str  # the watcher's Contact: where NOTIFYs go
    route_set: tuple[str, ...]  # the SUBSCRIBE's Record-Route, in order
    transport: str  # "udp" or "tcp": how the SUBSCRIBE came, and how NOTIFYs leave
    flow: str | None = None  # "host:port" of the TCP connection the SUBSCRIBE came on

    @property
    def dialog_id(self) -> str:
        return dialog_id(self.call_id, self.local_tag, self.remote_tag)  # ours first


class WatcherSubscribed(AggregateCreated):
    TOPIC = "pua_reginfo:WatcherSubscribed"
    aor: str
    call_id: str
    local_tag: str
    remote_tag: str
    watcher: str
    remote_target: str
    route_set: list[str]
    transport: str
    expires_at: float
    peer: bool
    node: str
    flow: str | None = None  # absent from events recorded before flows were kept


class WatcherRefreshed(AggregateEvent):
    """A SUBSCRIBE refresh in the dialog was accepted: a new expiry."""

    TOPIC = "pua_reginfo:WatcherRefreshed"
    expires_at: float
    node: str

    def apply(self, aggregate: Watcher) -> None:
        aggregate.state = MACHINE.next_state(aggregate.state, "refreshed")
        aggregate.expires_at = self.expires_at


class WatcherNotified(AggregateEvent):
    """A NOTIFY was sent: the version its document carried (None: no body) and its CSeq."""

    TOPIC = "pua_reginfo:WatcherNotified"
    version: int | None
    cseq: int
    full: bool
    node: str

    def apply(self, aggregate: Watcher) -> None:
        aggregate.state = MACHINE.next_state(aggregate.state, "notified")
        if self.version is not None:
            aggregate.document_version = self.version
        aggregate.cseq = self.cseq
        if aggregate.state == TERMINATED:
            aggregate.final_sent = True


class WatcherTerminated(AggregateEvent):
    TOPIC = "pua_reginfo:WatcherTerminated"
    reason: str
    node: str

    def apply(self, aggregate: Watcher) -> None:
        aggregate.state = MACHINE.next_state(aggregate.state, "terminated")
        aggregate.reason = self.reason


WATCHER_TOPICS = tuple(cls.TOPIC for cls in (
    WatcherSubscribed, WatcherRefreshed, WatcherNotified, WatcherTerminated))

for _cls in (WatcherSubscribed, WatcherRefreshed, WatcherNotified, WatcherTerminated):
    register_topic(_cls.TOPIC, _cls)


class Watcher(BaseAggregate[UUID]):
    """One subscription to an AoR's reg state that we serve (RFC 6665 notifier)."""

    TOPIC = "pua_reginfo:Watcher"

    def __init__(self, aor: str, call_id: str, local_tag: str, remote_tag: str, watcher: str,
                 remote_target: str, route_set: list[str], transport: str,
                 expires_at: float, peer: bool, node: str, flow: str | None = None):
        self.aor = aor
        self.dialog = WatcherDialog(call_id, local_tag, remote_tag, watcher, remote_target,
                                    tuple(route_set), transport, flow)
        self.expires_at = expires_at
        self.peer = peer
        self.state = ACTIVE
        self.document_version: int | None = None  # of the last document sent (None: none yet)
        self.cseq = 0  # of the last NOTIFY sent in the dialog
        self.reason: str | None = None
        self.final_sent = False

    @classmethod
    def subscribe(cls, aor: str, dialog: WatcherDialog, expires_at: float, peer: bool,
                  node: str, now: float) -> Watcher:
        _check_dialog(dialog)
        if not expires_at >= now:
            raise InvalidRequest("a watcher's expiry cannot be in the past")
        return cls._create(WatcherSubscribed, id=watcher_id(dialog.dialog_id), aor=aor,
                           call_id=dialog.call_id, local_tag=dialog.local_tag,
                           remote_tag=dialog.remote_tag, watcher=dialog.watcher,
                           remote_target=dialog.remote_target,
                           route_set=list(dialog.route_set), transport=dialog.transport,
                           expires_at=expires_at, peer=peer, node=node, flow=dialog.flow,
                           timestamp=at(now))

    @property
    def active(self) -> bool:
        return self.state == ACTIVE

    @property
    def final_due(self) -> bool:
        """Terminated with a reason that still owes the watcher a final NOTIFY."""
        return (self.state == TERMINATED and not self.final_sent
                and FINAL_NOTIFY.get(self.reason or "", False))

    def is_expired(self, now: float) -> bool:
        return self.active and now >= self.expires_at

    def seconds_left(self, now: float) -> int:
        """Subscription-State `expires` (RFC 6665 4.1.3): whole seconds, rounded down."""
        return max(0, int(self.expires_at - now)) if self.active else 0

    def next_version(self) -> int:
        """The version of the next document (RFC 3680 5.2: 0 first, then one more each)."""
        version = 0 if self.document_version is None else self.document_version + 1
        if version > MAX_VERSION:
            raise IllegalTransition(f"watcher {self.dialog.dialog_id}: no versions left")
        return version

    def next_cseq(self) -> int:
        if self.cseq >= MAX_CSEQ:
            raise IllegalTransition(f"watcher {self.dialog.dialog_id}: no CSeq numbers left")
        return self.cseq + 1

    def refresh(self, expires_at: float, node: str, now: float) -> None:
        MACHINE.next_state(self.state, "refreshed")  # IllegalTransition once terminated
        if not expires_at >= now:
            raise InvalidRequest("a watcher's expiry cannot be in the past")
        self.trigger_event(WatcherRefreshed, expires_at=expires_at, node=node,
                           timestamp=at(now))

    def notified(self, version: int | None, cseq: int, full: bool, node: str,
                 now: float) -> None:
        """Record a NOTIFY sent with the numbers `next_version` and `next_cseq` gave."""
        MACHINE.next_state(self.state, "notified")
        if self.state == TERMINATED and not self.final_due:
            raise IllegalTransition(f"watcher {self.dialog.dialog_id}: nothing more is sent")
        if version is not None and version != self.next_version():
            raise IllegalTransition(f"watcher {self.dialog.dialog_id}: version {version} "
                                    f"sent where {self.next_version()} was next")
        if cseq != self.next_cseq():
            raise IllegalTransition(f"watcher {self.dialog.dialog_id}: CSeq {cseq} sent "
                                    f"where {self.next_cseq()} was next")
        self.trigger_event(WatcherNotified, version=version, cseq=cseq, full=full, node=node,
                           timestamp=at(now))

    def terminate(self, reason: str, node: str, now: float) -> bool:
        """End the subscription; False (nothing recorded) when it has ended already."""
        if reason not in REASONS:
            raise InvalidRequest(f"unknown watcher termination reason {reason!r}")
        if not MACHINE.allows(self.state, "terminated"):
            return False
        self.trigger_event(WatcherTerminated, reason=reason, node=node, timestamp=at(now))
        return True


def _check_dialog(dialog: WatcherDialog) -> None:
    if not (dialog.call_id and dialog.local_tag and dialog.remote_tag):
        raise InvalidRequest("a watcher's dialog needs a Call-ID and both tags")
    if not dialog.remote_target:
        raise InvalidRequest("a watcher's dialog needs a remote target (its Contact)")
    if dialog.transport not in TRANSPORTS:
        raise InvalidRequest(f"unknown transport {dialog.transport!r} for a watcher")
