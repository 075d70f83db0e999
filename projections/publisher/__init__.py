"""The publisher projection: one full-state reginfo document per local change (RFC 3680 5.3),
queued per node in a persistent outbox for PUBLISH (RFC 3903)."""

from projections.publisher.composer import ComposedDocument, Composer, fold
from projections.publisher.messages import LOCAL_ORIGINS, Message, group_messages, publishes
from projections.publisher.projection import BATCH_SIZE, PublisherProjection, stored_history
from projections.publisher.view import OutboxDocument, PublicationRow, PublisherView

__all__ = ["BATCH_SIZE", "LOCAL_ORIGINS", "ComposedDocument", "Composer", "Message",
           "OutboxDocument", "PublicationRow", "PublisherProjection", "PublisherView", "fold",
           "group_messages", "publishes", "stored_history"]
