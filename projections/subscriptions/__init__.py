"""The subscriptions projection: what the subscription keeper keeps, as a tracked view."""

from projections.subscriptions.projection import SubscriptionsProjection
from projections.subscriptions.view import SubscriptionRow, SubscriptionsView

__all__ = ["SubscriptionRow", "SubscriptionsProjection", "SubscriptionsView"]
