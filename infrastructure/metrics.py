"""What `serve` tells Prometheus: its counts, read from the running gateway at scrape time.

The gateway counts as it works (sip_gateway/tallies.py: requests, 503 causes, NOTIFY
results, PUBLISH, SUBSCRIBE and NOTIFY outcomes; the executor's batches and commits);
nothing here is on a request's path. A scrape reads those counts (a UDP worker's included,
as it last told serve), the states of the publications, subscriptions and watchers held
in memory, and `StoreFigures` read from the store for that scrape (AoRs and bindings in
the usrloc view, the outbox, the projections' positions). Families are named
`pua_reginfo_*`; the process collector adds CPU, memory and open files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from sip_gateway.tallies import Histogram, RequestTallies, Tally

if TYPE_CHECKING:
    from infrastructure.bootstrap import Service
    from infrastructure.serve import Gateway

PREFIX = "pua_reginfo_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class StoreFigures:
    """What a scrape reads from the store (on the store thread)."""

    events: int  # the highest notification id: events recorded since the store began
    usrloc_position: int
    publisher_position: int | None  # None: this node does not publish
    aors: int
    bindings: int
    outbox: int | None


def store_figures(service: Service, publishing: bool) -> StoreFigures:
    app = service.app
    aors, bindings = service.view.totals()
    publisher = service.publisher
    return StoreFigures(
        events=app.recorder.max_notification_id() or 0,
        usrloc_position=service.view.max_tracking_id(app.name) or 0,
        publisher_position=(publisher.position() or 0) if publishing else None,
        aors=aors, bindings=bindings,
        outbox=publisher.view.waiting(publisher.node) if publishing else None)


def exposition(gateway: Gateway, figures: StoreFigures | None) -> bytes:
    """The text a scrape gets: our families, then the process's."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_GatewayCollector(gateway, figures))
    ProcessCollector(registry=registry)
    return generate_latest(registry)


class _GatewayCollector:
    def __init__(self, gateway: Gateway, figures: StoreFigures | None) -> None:
        self.gateway, self.figures = gateway, figures

    def collect(self) -> Iterator[Metric]:
        gateway = self.gateway
        requests = RequestTallies()
        requests.absorb(gateway.core.tallies.snapshot())
        if gateway.workers is not None:
            requests.absorb(gateway.workers.tallies().snapshot())
        yield _counter("sip_requests", "SIP requests answered, by method and status.",
                       requests.answered, ("method", "code"))
        yield _histogram("sip_request_duration_seconds",
                         "Time from a request's arrival to its answer, by method.",
                         requests.latency, ("method",))
        yield _counter("sip_unavailable", "503 answers, by cause (store_down, overload, "
                       "contention, shutting_down, serve_away, not_ready, rate_limit).",
                       requests.unavailable, ("cause",))
        yield _counter("sip_dropped", "Requests dropped unanswered, by reason (rate_limit: "
                       "a source past twice [security] max_rate).", requests.dropped,
                       ("reason",))
        yield _counter("notify_results", "NOTIFYs applied, by reginfo_handle_notify result "
                       "(1: bindings left, 2: none left, -1: refused).",
                       requests.notify_results, ("result",))
        yield _counter("notify_refused", "NOTIFYs refused before they were applied, by "
                       "reason.", requests.notify_refused, ("reason",))
        yield _counter("notify_version_gaps", "NOTIFYs whose reginfo version showed lost "
                       "documents (full state is asked for).", requests.version_gaps, ())
        yield from self._store()
        yield from self._clients()

    def _store(self) -> Iterator[Metric]:
        gateway, figures = self.gateway, self.figures
        executor = gateway.executor
        yield _histogram("store_commit_batch_size", "Commands per group-committed "
                         "transaction.", executor.batch_sizes, ())
        yield _histogram("store_commit_duration_seconds", "Time from a batch's start to "
                         "its outcomes (the 2xx wait for it).", executor.commit_seconds, ())
        yield _gauge("store_available", "1 while the event store answers, 0 while it is "
                     "away.", 0 if executor.unavailable is not None else 1)
        yield _gauge("store_waiting_commands", "Commands queued for the next transaction.",
                     executor.waiting)
        yield _gauge("view_lag_seconds", "How long the usrloc view has been behind the "
                     "event store (0: caught up).", gateway.lag.seconds(gateway.monotonic()))
        if figures is None:
            return
        counter = CounterMetricFamily(PREFIX + "events_recorded", "Events recorded in the "
                                      "store since it began (the highest notification id).")
        counter.add_metric([], figures.events)
        yield counter
        yield _gauge("view_aors", "AoRs in the usrloc view.", figures.aors)
        yield _gauge("view_bindings", "Bindings (contacts) in the usrloc view.",
                     figures.bindings)
        lag = GaugeMetricFamily(PREFIX + "projection_lag_events", "Events recorded that a "
                                "projection has not applied yet.", labels=["projection"])
        lag.add_metric(["usrloc"], figures.events - figures.usrloc_position)
        if figures.publisher_position is not None:
            lag.add_metric(["publisher"], figures.events - figures.publisher_position)
        yield lag
        if figures.outbox is not None:
            yield _gauge("publish_outbox_documents", "reginfo documents of this node "
                         "waiting to be PUBLISHed.", figures.outbox)

    def _clients(self) -> Iterator[Metric]:
        gateway = self.gateway
        yield _gauge("leading", "1 while this node holds the keeper lock (runs the "
                     "subscription keeper and the notifier).", 1 if gateway.leading else 0)
        if gateway.publisher is not None:
            yield _counter("publish_responses", "PUBLISH outcomes: the final status, or "
                           "timeout.", gateway.publisher.outcomes, ("result",))
            yield _states("publications", "Publications held in memory, by RFC 3903 "
                          "state.", gateway.publisher.states())
        if gateway.keeper is not None:
            yield _counter("subscribe_responses", "SUBSCRIBE outcomes: the final status, "
                           "or timeout.", gateway.keeper.outcomes, ("result",))
            yield _states("subscriptions", "Subscriptions kept, by dialog state.",
                          gateway.keeper.states())
        if gateway.notifier is not None:
            yield _counter("notifier_notifies", "NOTIFYs sent to watchers: delivered or "
                           "failed, full or partial state.", gateway.notifier.outcomes,
                           ("result", "state"))
            yield _gauge("watchers", "Watchers served by this node.",
                         len(gateway.notifier.served))


def _counter(name: str, documentation: str, tally: Tally, labels: tuple[str, ...]) -> Metric:
    family = CounterMetricFamily(PREFIX + name, documentation, labels=list(labels))
    for values, count in sorted(tally.counts.items()):
        family.add_metric(list(values), count)
    if not labels and not tally.counts:
        family.add_metric([], 0)
    return family


def _histogram(name: str, documentation: str, histogram: Histogram,
               labels: tuple[str, ...]) -> Metric:
    family = HistogramMetricFamily(PREFIX + name, documentation, labels=list(labels))
    for values, buckets, total in sorted(histogram.cumulative()):
        family.add_metric(list(values), buckets, total)
    return family


def _gauge(name: str, documentation: str, value: Any) -> Metric:
    family = GaugeMetricFamily(PREFIX + name, documentation)
    family.add_metric([], value)
    return family


def _states(name: str, documentation: str, counted: dict[str, int]) -> Metric:
    family = GaugeMetricFamily(PREFIX + name, documentation, labels=["state"])
    for state, count in sorted(counted.items()):
        family.add_metric([state], count)
    return family
