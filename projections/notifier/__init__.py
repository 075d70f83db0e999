"""The notifier's projection: what each watcher of an AoR is told (RFC 3680 5.3)."""

from projections.notifier.pictures import AorPictures, watched_history

__all__ = ["AorPictures", "watched_history"]
