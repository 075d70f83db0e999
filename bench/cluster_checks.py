"""What several nodes on one store must show, read from the answers, logs, store and peer.

- `LostUpdates`: every 200 to a REGISTER lists every binding of its AoR that another
  phone had seen acknowledged before this REGISTER was sent (refreshes only, long
  lifetimes: no binding leaves meanwhile). A 200 missing one is a lost update.
- `decided_by_node`: the REGISTER commands each node recorded (distinct causes of its
  `register`-origin contact events), to compare with the PUBLISH documents each node sent:
  a node publishing only what it decided sends exactly as many.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from dataclasses import dataclass, field

from bench.register_load import Ua
from domain.events import ContactEvent
from infrastructure.bootstrap import Service

_CONTACT = re.compile(rb"\r\nContact:\s*<([^>]+)>", re.IGNORECASE)
PAGE = 5000


@dataclass
class LostUpdates:
    first_acked: dict[str, float] = field(default_factory=dict)  # contact -> when
    by_aor: dict[str, list[Ua]] = field(default_factory=lambda: defaultdict(list))
    answers: int = 0
    last_answer: float = 0.0  # monotonic
    problems: list[str] = field(default_factory=list)

    def answered(self, ua: Ua, first_sent: float, response: bytes) -> None:
        listed = {m.decode() for m in _CONTACT.findall(response)}
        self.answers += 1
        self.last_answer = time.monotonic()
        for other in self.by_aor[ua.aor_user]:
            acked = self.first_acked.get(other.contact)
            if acked is not None and acked < first_sent and other.contact not in listed:
                self.problems.append(f"{ua.callid} CSeq {ua.cseq}: 200 without {other.contact}")
        self.first_acked.setdefault(ua.contact, time.time())
        if ua not in self.by_aor[ua.aor_user]:
            self.by_aor[ua.aor_user].append(ua)


def decided_by_node(service: Service) -> dict[str, int]:
    app, causes, start = service.app, set(), 1
    while True:
        page = app.recorder.select_notifications(start, limit=PAGE)
        for notification in page:
            event = app.mapper.to_domain_event(notification)
            if isinstance(event, ContactEvent) and event.origin == "register":
                causes.add((event.node, event.aor, event.cause))
        if len(page) < PAGE:
            break
        start = page[-1].id + 1
    counts: dict[str, int] = defaultdict(int)
    for node, _, _ in causes:
        counts[node] += 1
    return dict(counts)
