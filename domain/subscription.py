"""The Subscription aggregate: what one reg subscription has told us (RFC 3680 section 5.5).

Theory of operation. A subscription orders its documents by `version`. The first document
sets the local version. Afterwards: exactly local+1 is the expected next document; above
local+1 means documents were lost (a gap): the document is still applied, and the
subscriber must re-SUBSCRIBE to get full state when it was partial; at or below local the
document is stale or a duplicate and is discarded unprocessed. A first document that is
partial leaves us without full state too. The subscription remembers every AoR it told
us about, so that a later full-state document can remove what it no longer lists.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import AggregateCreated, AggregateEvent, BaseAggregate
from eventsourcing.utils import register_topic

from domain.address_of_record import at

ACCEPT, GAP, STALE, RESET = "accept", "gap", "stale", "reset"


def dialog_id(call_id: str, local_tag: str, remote_tag: str) -> str:
    """The id of a subscription dialog seen from our side (RFC 3261 12: Call-ID, our tag,
    the notifier's tag): what a Subscription is kept under."""
    return f"{call_id};local={local_tag};remote={remote_tag}"


def subscription_aggregate_id(subscription_id: str) -> UUID:
    return uuid5(NAMESPACE_URL, "reg-subscription:" + subscription_id)


class SubscriptionObserved(AggregateCreated):
    """The first document of a subscription arrived (the subscription is known here)."""

    TOPIC = "pua_reginfo:SubscriptionObserved"
    subscription_id: str
    node: str


class ReginfoDocumentAccepted(AggregateEvent):
    """A document was applied; `gap` says full state must be fetched again."""

    TOPIC = "pua_reginfo:ReginfoDocumentAccepted"
    version: int | None
    state: str
    aors: dict[str, str]
    gap: bool
    node: str
    cseq: int | None = None  # of the NOTIFY that carried it (RFC 3261 12.2.2 ordering)

    def apply(self, aggregate: Subscription) -> None:
        if self.version is not None:
            aggregate.reginfo_version = self.version
        if self.cseq is not None:
            aggregate.notify_cseq = self.cseq
        aggregate.aors.update(self.aors)
        if self.state == "full":
            aggregate.needs_full_state = False
        if self.gap:
            aggregate.needs_full_state = True


class ReginfoDocumentDiscarded(AggregateEvent):
    """A stale or duplicate document was received and not processed."""

    TOPIC = "pua_reginfo:ReginfoDocumentDiscarded"
    version: int
    reason: str
    node: str

    def apply(self, aggregate: Subscription) -> None:
        pass


class SubscriptionEnded(AggregateEvent):
    """The notifier ended the subscription (Subscription-State: terminated)."""

    TOPIC = "pua_reginfo:SubscriptionEnded"
    reason: str
    node: str

    def apply(self, aggregate: Subscription) -> None:
        aggregate.state = "terminated"


for _cls in (SubscriptionObserved, ReginfoDocumentAccepted, ReginfoDocumentDiscarded,
             SubscriptionEnded):
    register_topic(_cls.TOPIC, _cls)


class Subscription(BaseAggregate[UUID]):
    """One reg subscription seen from the subscriber side: versions and what it told us."""

    TOPIC = "pua_reginfo:Subscription"

    def __init__(self, subscription_id: str, node: str):
        self.subscription_id = subscription_id
        self.reginfo_version: int | None = None
        self.aors: dict[str, str] = {}  # aggregate id -> AoR URI this subscription reported
        self.needs_full_state = False
        self.state = "active"
        self.notify_cseq: int | None = None  # CSeq of the last NOTIFY whose document was applied

    @classmethod
    def observe(cls, subscription_id: str, node: str, now: float) -> Subscription:
        return cls._create(SubscriptionObserved, id=subscription_aggregate_id(subscription_id),
                           subscription_id=subscription_id, node=node, timestamp=at(now))

    def classify(self, version: int | None, full: bool = False, cseq: int | None = None) -> str:
        """ACCEPT the expected next document, GAP after lost ones, STALE otherwise.

        RESET: a full-state document whose version is not above ours but whose NOTIFY was
        sent after the last one applied (a higher CSeq in the dialog): the notifier does not
        count versions per subscription (it restarted, or relays its publishers' numbers),
        so the newer full state is the new baseline rather than a duplicate.
        """
        if version is None or self.reginfo_version is None:
            return ACCEPT
        if version <= self.reginfo_version:
            last = getattr(self, "notify_cseq", None)
            if full and cseq is not None and last is not None and cseq > last:
                return RESET
            return STALE
        return ACCEPT if version == self.reginfo_version + 1 else GAP

    def accept(self, version: int | None, state: str, aors: dict[str, str], gap: bool,
               node: str, now: float, cseq: int | None = None) -> None:
        self.trigger_event(ReginfoDocumentAccepted, version=version, state=state, aors=aors,
                           gap=gap, node=node, cseq=cseq, timestamp=at(now))

    def discard(self, version: int, reason: str, node: str, now: float) -> None:
        self.trigger_event(ReginfoDocumentDiscarded, version=version, reason=reason, node=node,
                           timestamp=at(now))

    def end(self, reason: str, node: str, now: float) -> None:
        if self.state != "terminated":
            self.trigger_event(SubscriptionEnded, reason=reason, node=node, timestamp=at(now))
