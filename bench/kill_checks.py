"""What must hold after kills: read from the store, the view, and the peer's records.

- `store_rows`: the bindings as the aggregates in the event store hold them, in the view's
  row shape, for bench.register_load.check_acknowledged (the same check as on the view).
- `applied_twice`: a REGISTER or NOTIFY whose contact events were recorded twice (the same
  cause, binding and event in two transactions): a request applied again.
- `notify_problems`: the remote AoR holds what the last acknowledged NOTIFY said.
- `publication_problems`: per PUBLISHed resource, the documents' versions run 0, 1, 2, ...
  with no gap (a document lost), each at most twice and then in a row (RFC 3903 lets a
  publisher send again a document whose 2xx it had not recorded); the last document lists
  the AoR's local bindings as the view holds them. Returns (problems, re-sends).
- `dialogs`: the Call-IDs of the SUBSCRIBEs the peer saw, per resource (their To URI:
  a refresh's Request-URI is the notifier's Contact); one each.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from bench.mixed_traffic import NotifyStream
from bench.presence_peer import Published
from domain.events import ContactEvent
from infrastructure.bootstrap import Service
from tests.e2e.python_peer import PythonPeer

PAGE = 5000


def store_rows(service: Service, aors: set[str]) -> list[dict]:
    rows = []
    for aor in sorted(aors):
        identity = service.app.identify(aor)
        try:
            aggregate = service.app.repository.get(identity.id)
        except Exception:  # never registered
            continue
        for binding in aggregate.bindings.values():
            rows.append({"aor": aor, "contact": binding.contact, "callid": binding.callid,
                         "cseq": binding.cseq, "expires": binding.expires})
    return rows


def applied_twice(service: Service) -> list[str]:
    app, seen, start = service.app, Counter(), 1
    while True:
        page = app.recorder.select_notifications(start, limit=PAGE)
        for notification in page:
            event = app.mapper.to_domain_event(notification)
            if isinstance(event, ContactEvent) and event.origin in ("register", "notify"):
                key = (event.aor, event.cause, event.binding.key, type(event).__name__)
                seen[key] += 1
        if len(page) < PAGE:
            break
        start = page[-1].id + 1
    return [f"{key} recorded {count} times" for key, count in seen.items() if count > 1]


def notify_problems(stream: NotifyStream, rows: list[dict]) -> list[str]:
    if stream.acked is None:
        return ["no NOTIFY was answered 200"]
    version, contacts = stream.acked
    held = {r["contact"] for r in rows if r["aor"] == stream.resource}
    if held != set(contacts) and not stream.unanswered_since_ack:
        return [f"{stream.resource}: NOTIFY version {version} acknowledged with "
                f"{sorted(contacts)}, held {sorted(held)}"]
    return []


def publication_problems(received: list[Published], rows: list[dict],
                         local_aors: set[str]) -> tuple[list[str], int]:
    by_resource: dict[str, list[Published]] = defaultdict(list)
    for published in received:
        if published.document is not None:
            by_resource[published.resource].append(published)
    problems, resent = [], 0
    for resource, documents in sorted(by_resource.items()):
        versions = [d.version for d in documents]
        counts = Counter(versions)
        if sorted(counts) != list(range(max(versions) + 1)):
            missing = sorted(set(range(max(versions) + 1)) - set(counts))
            problems.append(f"{resource}: versions missing {missing[:10]}")
        for version, count in counts.items():
            if count > 2 or count == 2 and versions.index(version) + 1 != \
                    len(versions) - versions[::-1].index(version) - 1:
                problems.append(f"{resource}: version {version} sent {count} times "
                                f"(in order {versions})")
        resent += sum(count - 1 for count in counts.values())
        if versions != sorted(versions):
            problems.append(f"{resource}: versions out of order {versions}")
        last = documents[-1]
        held = {r["contact"] for r in rows if r["aor"] == resource and resource in local_aors}
        live = {uri for uri in last.contacts() if uri not in set(last.contacts_ended())}
        if live != held:
            problems.append(f"{resource}: last document (version {last.version}) lists "
                            f"{sorted(live)}, the view {sorted(held)}")
    return problems, resent


def dialogs(peer: PythonPeer) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    with peer.lock:
        for subscribe in peer.subscribes:
            resource = subscribe.headers.get("To").split(">")[0].lstrip("<")
            found[resource].add(subscribe.headers.get("Call-ID"))
    return dict(found)
