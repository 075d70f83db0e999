"""One resource's outbox documents feeding its publication, without IO (RFC 3903 4)."""

from __future__ import annotations

from dataclasses import dataclass

from sip_gateway.client.publication_queue import new_queue

T0 = 1_800_000_000.0
ALICE = "sip:alice@example.com"


@dataclass
class Document:
    id: int
    resource: str = ALICE
    version: int = 0
    body: bytes = b""
    expires: int = 600
    final: bool = False


def document(id: int, final: bool = False) -> Document:
    return Document(id, version=id, body=f"<reginfo version='{id}'/>".encode(), final=final)


def sent(queue, now: float = T0):
    plan = queue.publication.next_request(now)
    assert plan is not None
    return plan


def test_documents_go_one_at_a_time_each_once_the_previous_one_was_accepted():
    queue = new_queue(ALICE, lambda: 0.5)
    queue.add(document(1))
    queue.add(document(2))
    assert queue.feed(T0) == [] and queue.current.id == 1
    plan = sent(queue)
    assert plan.body == document(1).body and queue.feed(T0) == []  # one in flight
    queue.publication.on_response(200, etag="e1", expires=600, min_expires=None, now=T0)
    assert queue.accepted().id == 1 and queue.accepted() is None  # reported once
    assert queue.feed(T0) == [] and queue.current.id == 2
    assert [queue.next_cseq(), queue.next_cseq()] == [1, 2]


def test_while_failing_the_newest_document_supersedes_the_unsent_ones():
    queue = new_queue(ALICE, lambda: 0.5)
    queue.add(document(1))
    queue.feed(T0)
    sent(queue)
    queue.publication.on_timeout(T0 + 1)  # failing: back-off
    for n in (2, 3, 4):
        queue.add(document(n))
    stale = queue.feed(T0 + 1)
    assert [d.id for d in stale] == [1, 2, 3]  # the unaccepted current one too
    assert queue.current.id == 4 and not queue.queue


def test_a_final_document_asks_for_the_removal_after_it():
    queue = new_queue(ALICE, lambda: 0.5)
    queue.add(document(1, final=True))
    queue.feed(T0)
    sent(queue)
    queue.publication.on_response(200, etag="e1", expires=600, min_expires=None, now=T0)
    assert queue.accepted().id == 1
    assert sent(queue, T0).expires == 0  # RFC 3903 4.5


def test_removals_not_stored_are_tried_again_with_the_next_ones():
    queue = new_queue(ALICE, lambda: 0.5)
    ids = queue.removing([3, 4])
    queue.removal_stored(False, ids)
    assert queue.unsaved == [3, 4] and not queue.done
    ids = queue.removing([5])
    assert ids == [3, 4, 5]
    queue.removal_stored(True, ids)
    assert queue.unsaved == []
