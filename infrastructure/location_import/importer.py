"""`import-location`: another registrar's location table recorded as our bindings.

Every live row becomes a `created` event with origin `import` on its AoR, through the
same command path as every other change (infrastructure.command_handlers). Rows go in
batches, one transaction each; each row is imported, found present (the same Call-ID
and CSeq bound already: a second run changes nothing), skipped as expired, or refused
with its reason, and nothing of a refused row is recorded.

Imported bindings are not PUBLISHed: the registrar they come from published them
already, and they are no new registrations (the publisher publishes `register`, `admin`
and `expiry` changes only). The AoR's next REGISTER, administrative change or expiry
publishes its full state, imported bindings included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from infrastructure.command_handlers import IMPORTED, PRESENT
from infrastructure.commands import ImportBindings, ImportedBinding
from infrastructure.location_import.rows import ExpiredRow, RefusedRow, imported, label
from infrastructure.location_import.source import LocationTable

BATCH = 500  # bindings per transaction


@dataclass
class ImportReport:
    """What an import did with each row of the source."""

    source: str
    rows: int = 0
    imported: int = 0
    expired: int = 0
    present: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)  # (row, reason)

    def summary(self) -> str:
        return (f"{self.source}: {self.rows} row(s): imported {self.imported}, skipped "
                f"expired {self.expired}, already present {self.present}, refused "
                f"{len(self.refused)}")

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "rows": self.rows, "imported": self.imported,
                "expired": self.expired, "present": self.present,
                "refused": [{"row": row, "reason": reason} for row, reason in self.refused]}


def import_location(service: Any, source: LocationTable) -> ImportReport:
    """Import every live binding of `source` into `service`'s store."""
    report = ImportReport(source.display, rows=len(source.rows))
    now = service.clock.now()
    wanted: list[tuple[str, ImportedBinding]] = []
    for row in source.rows:
        try:
            taken = imported(row, source.table, now)
        except RefusedRow as reason:
            report.refused.append((label(row), str(reason)))
            continue
        if isinstance(taken, ExpiredRow):
            report.expired += 1
        else:
            wanted.append((label(row), taken))
    for start in range(0, len(wanted), BATCH):
        batch = wanted[start:start + BATCH]
        outcomes = service.run(ImportBindings(tuple(binding for _, binding in batch)))
        for (name, _), outcome in zip(batch, outcomes):
            if outcome == IMPORTED:
                report.imported += 1
            elif outcome == PRESENT:
                report.present += 1
            else:
                report.refused.append((name, outcome))
    return report
