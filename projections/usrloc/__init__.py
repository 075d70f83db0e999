"""The usrloc projection: the location table built from contact events."""

from projections.usrloc.projection import UsrlocProjection
from projections.usrloc.rebuild import rebuild_usrloc
from projections.usrloc.replay import rows_at
from projections.usrloc.row import LocationRow
from projections.usrloc.view import LocationView

__all__ = ["LocationRow", "LocationView", "UsrlocProjection", "rebuild_usrloc", "rows_at"]
