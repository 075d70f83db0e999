"""The watchers projection: the subscriptions this service serves, as a tracked view."""

from projections.watchers.projection import WatchersProjection
from projections.watchers.view import WatcherRow, WatchersView

__all__ = ["WatcherRow", "WatchersProjection", "WatchersView"]
