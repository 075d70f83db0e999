"""Projections over the registration ledger: tracked, exactly-once, resumable, rebuildable."""

from projections.catch_up import catch_up, position
from projections.usrloc import (LocationRow, LocationView, UsrlocProjection, rebuild_usrloc,
                               rows_at)

__all__ = ["LocationRow", "LocationView", "UsrlocProjection", "catch_up", "position",
           "rebuild_usrloc", "rows_at"]
