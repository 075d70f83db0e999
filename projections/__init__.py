"""Projections over the registration ledger: tracked, exactly-once, resumable, rebuildable."""

from projections.catch_up import catch_up, position
from projections.retained import HistoryPruned, Retained, Seed, retained_history
from projections.usrloc import (LocationRow, LocationView, UsrlocProjection, rebuild_usrloc,
                               rows_at)

__all__ = ["HistoryPruned", "LocationRow", "LocationView", "Retained", "Seed",
           "UsrlocProjection", "catch_up", "position", "rebuild_usrloc", "retained_history",
           "rows_at"]
