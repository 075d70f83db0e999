"""What a REGISTER refresh changed of a local binding (RFC 3261 10.3 step 7).

A phone refreshes its binding every few minutes and almost nothing changes but the
expiry and the CSeq. A `ContactRefreshed` of a local binding therefore records only the
binding key, the REGISTER that refreshed it (Call-ID, CSeq) and the other fields whose
value changed; everything else is the binding as it stood. Whoever folds an AoR's events
in order (the aggregate, the location view, the publisher, the audit) holds that binding
and gets the refreshed one from `applied_to`. Refreshes of bindings learned from a NOTIFY
keep the whole binding: the notifier's document is the source there.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from domain.binding import Binding
from domain.errors import DomainError

_COMPARED = tuple(f.name for f in fields(Binding) if f.name not in ("key", "callid", "cseq"))


class MissingBinding(DomainError):
    """A refresh met in a history that does not hold the binding it refreshes."""

    sip_status = 500


@dataclass(frozen=True)
class BindingRefresh:
    key: str
    callid: str
    cseq: int
    changes: tuple[tuple[str, Any], ...] = ()  # (Binding field, new value), in field order

    is_local = True  # only local bindings are refreshed this way

    @classmethod
    def between(cls, before: Binding, after: Binding) -> BindingRefresh:
        """The refresh that turns `before` into `after` (the same binding key)."""
        old, new = before.__dict__, after.__dict__
        changes = tuple((name, new[name]) for name in _COMPARED if new[name] != old[name])
        return cls(before.key, after.callid, after.cseq, changes)

    def applied_to(self, before: Binding | None) -> Binding:
        if before is None:
            raise MissingBinding(f"a refresh of binding {self.key} that this history "
                                 "does not hold")
        values: dict[str, Any] = {"callid": self.callid, "cseq": self.cseq}
        values.update(self.changes)
        return before.changed(**values)


def binding_after(change: Binding | BindingRefresh, before: Binding | None) -> Binding:
    """The binding a contact event leaves: its own, or `before` refreshed."""
    if isinstance(change, Binding):
        return change
    return change.applied_to(before)
