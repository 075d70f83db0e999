"""The usrloc projection: the location table built from contact events."""

from projections.usrloc.projection import UsrlocProjection
from projections.usrloc.replay import rows_at
from projections.usrloc.row import LocationRow
from projections.usrloc.view import LocationView

__all__ = ["LocationRow", "LocationView", "UsrlocProjection", "rows_at"]
