"""How late each binding was recorded `expired`, read from the event store.

Every `ContactExpired` event of the store is decoded; its lateness is the event's time
minus the expiry of the binding it ended (the time the binding's lifetime ran out, as the
binding held it). A binding recorded `expired` more than once is a duplicate; an expected
binding never recorded `expired` is missing. The same figures for the PUBLISHes a
presence server saw: the first document announcing each binding's expiry against that
expiry.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from domain.events import ContactExpired
from infrastructure.bootstrap import Service

PAGE = 5000


@dataclass
class Lateness:
    """Seconds late, per binding; duplicates and missing ones."""

    late: dict[str, float]
    duplicates: int
    missing: int

    def percentile(self, share: float) -> float:
        ordered = sorted(self.late.values())
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(len(ordered) * share))]

    def summary(self) -> str:
        return (f"{len(self.late)} expired; lateness median {self.percentile(0.5):.3f} s, "
                f"p99 {self.percentile(0.99):.3f} s, max {self.percentile(1.0):.3f} s; "
                f"over 1 s {sum(1 for v in self.late.values() if v > 1.0)}; "
                f"duplicates {self.duplicates}; missing {self.missing}")


def expired_events(service: Service) -> list[tuple[str, float, float, str]]:
    """(contact, event time, binding expiry, node) of every ContactExpired in the store."""
    app, found, start = service.app, [], 1
    while True:
        page = app.recorder.select_notifications(start, limit=PAGE)
        for notification in page:
            if notification.topic == ContactExpired.TOPIC:
                event = app.mapper.to_domain_event(notification)
                found.append((event.binding.contact, event.timestamp.timestamp(),
                              event.binding.expires, event.node))
        if len(page) < PAGE:
            return found
        start = page[-1].id + 1


def lateness(expected: dict[str, float], recorded: list[tuple[str, float]]) -> Lateness:
    """`expected`: contact -> expiry; `recorded`: (contact, when) of each expiry seen."""
    seen = Counter(contact for contact, _ in recorded if contact in expected)
    late: dict[str, float] = {}
    for contact, when in recorded:
        if contact in expected and contact not in late:
            late[contact] = when - expected[contact]
    return Lateness(late, sum(n - 1 for n in seen.values()), len(set(expected) - set(late)))
