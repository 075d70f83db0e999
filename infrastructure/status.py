"""What `status` reports: subscriptions, publications, the watchers this service serves,
projection positions and lag, and the horizon of the last prune.

Read from the store only, so it works while `serve` runs (in another process) and after
it stopped: the subscriptions from their aggregates (with the last reginfo version of the
current dialog), the publications from the publisher's tables, the positions from the
tracking rows.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.application import AggregateNotFoundError

from domain.subscription import subscription_aggregate_id
from infrastructure.bootstrap import Service
from infrastructure.outbound_stores import kept_subscriptions


def service_status(service: Service) -> dict[str, Any]:
    app = service.app
    head = app.recorder.max_notification_id() or 0
    usrloc = service.view.max_tracking_id(app.name) or 0
    publisher = service.publisher.position()
    projections = {"usrloc": {"position": usrloc, "lag": head - usrloc}}
    if publisher is not None:
        projections[f"publisher@{service.publisher.node}"] = {"position": publisher, "lag": head - publisher}
    return {
        "notifications": head,
        "horizon": service.horizon.read(),  # Unix seconds: history before it pruned; None
        "projections": projections,
        "subscriptions": [_subscription(app, s) for s in kept_subscriptions(service)],
        "publications": [_publication(row) for row in service.publisher.view.publications()],
        "watchers": [_watcher(row) for row in served_watchers(service)],
    }


def served_watchers(service: Service) -> list[Any]:
    """Every watcher still active or owed a final NOTIFY, the view caught up first."""
    service.catch_up_watchers()
    return service.watchers.view.current()


def _watcher(row: Any) -> dict[str, Any]:
    dialog = row.dialog
    return {
        "aor": row.aor,
        "watcher": dialog.watcher,
        "state": row.state,
        "reason": row.reason,
        "expires_at": row.expires_at,
        "version": row.document_version,
        "cseq": row.cseq,
        "peer": row.peer,
        "final_due": row.final_due,
        "dialog": dialog.dialog_id,
        "remote_target": dialog.remote_target,
        "transport": dialog.transport,
    }


def _subscription(app: Any, subscription: Any) -> dict[str, Any]:
    dialog = subscription.dialog
    version = None
    if dialog is not None:
        try:
            version = app.repository.get(
                subscription_aggregate_id(dialog.dialog_id)).reginfo_version
        except AggregateNotFoundError:
            version = None
    return {
        "resource": subscription.resource,
        "state": subscription.state,
        "requested_expires": subscription.expires,
        "expires_at": None if dialog is None else dialog.expires_at,
        "dialog": None if dialog is None else dialog.dialog_id,
        "version": version,
        "failures": subscription.failures,
        "last_error": subscription.last_error,
    }


def _publication(row: Any) -> dict[str, Any]:
    return {
        "resource": row.resource,
        "node": row.node,
        "etag": row.etag,
        "expires_at": row.expires_at,
        "version": row.version,
        "pending": row.pending,
        "failures": row.failures,
        "last_error": row.last_error,
    }
