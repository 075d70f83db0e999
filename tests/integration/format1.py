"""The store of format 1 events in tests/fixtures/format1, and what the code that wrote it
showed of it (see test_format1_store.py)."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

from eventsourcing.persistence import StoredEvent

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "format1"
SHOWN = json.loads((FIXTURE / "shown.json").read_text())


def load_format1(service) -> int:
    """Store the fixture's events, as they were stored, in the service's (empty) store."""
    stored = [json.loads(line) for line in (FIXTURE / "events.jsonl").read_text().splitlines()]
    service.app.recorder.insert_events([
        StoredEvent(UUID(e["originator_id"]), e["originator_version"], e["topic"],
                    e["state"].encode()) for e in stored])
    return len(stored)
