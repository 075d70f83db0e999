"""Tallies: what the gateway counts as it works, for the metrics endpoint to read.

A `Tally` counts occurrences by label values (method and status, cause, outcome); a
`Histogram` sorts observations (seconds, batch sizes) into fixed buckets by label values.
Both are plain dictionaries updated on the event loop: no lock, no clock, no export
format. Whoever reads them (infrastructure/metrics.py) turns them into Prometheus
families at scrape time. `snapshot()` and `add()` carry a tally across processes (a UDP
worker's counts, added to serve's).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Mapping

Labels = tuple[str, ...]

# Seconds: a request answered from memory takes ~0.1 ms, one that waits for a commit 1-10 ms,
# one that waits for a stalled store up to [store] timeout.
LATENCY_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                  2.5, 5.0, 10.0)


class Tally:
    """Occurrences by label values: a Prometheus counter family's samples."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[Labels, int] = {}

    def add(self, *labels: str, amount: int = 1) -> None:
        self.counts[labels] = self.counts.get(labels, 0) + amount

    def total(self) -> int:
        return sum(self.counts.values())

    def snapshot(self) -> dict[Labels, int]:
        return dict(self.counts)

    def absorb(self, counts: Mapping[Labels, int]) -> None:
        for labels, amount in counts.items():
            self.add(*labels, amount=amount)


class Histogram:
    """Observations in buckets by label values: a Prometheus histogram's samples. Each
    label set keeps one count per bucket (the last one past every bound), and the sum."""

    __slots__ = ("bounds", "series")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BOUNDS) -> None:
        self.bounds = bounds
        self.series: dict[Labels, list[float]] = {}  # bucket counts..., then the sum

    def observe(self, value: float, *labels: str) -> None:
        series = self.series.get(labels)
        if series is None:
            series = self.series[labels] = [0] * (len(self.bounds) + 1) + [0.0]
        series[bisect_left(self.bounds, value)] += 1
        series[-1] += value

    def cumulative(self) -> Iterator[tuple[Labels, list[tuple[str, int]], float]]:
        """Per label set: (bound, observations at or below it) with "+Inf" last, and the sum."""
        for labels, series in self.series.items():
            running, buckets = 0, []
            for bound, count in zip((*map(_bound, self.bounds), "+Inf"), series[:-1]):
                running += count
                buckets.append((bound, running))
            yield labels, buckets, series[-1]

    def snapshot(self) -> dict[Labels, list[float]]:
        return {labels: list(series) for labels, series in self.series.items()}

    def absorb(self, series: Mapping[Labels, list[float]]) -> None:
        for labels, values in series.items():
            mine = self.series.setdefault(labels, [0] * (len(self.bounds) + 1) + [0.0])
            for index, value in enumerate(values):
                mine[index] += value


def _bound(value: float) -> str:
    return repr(float(value))


class RequestTallies:
    """What the server side counts: requests answered (method, status) and how long they
    took (method); 503s by cause; requests dropped unanswered by reason; NOTIFY results
    (reginfo_handle_notify's 1, 2, -1), NOTIFYs refused by reason, and version gaps found
    in our own dialogs."""

    __slots__ = ("answered", "latency", "unavailable", "dropped", "notify_results",
                 "notify_refused", "version_gaps")

    def __init__(self) -> None:
        self.answered = Tally()
        self.latency = Histogram()
        self.unavailable = Tally()
        self.dropped = Tally()
        self.notify_results = Tally()
        self.notify_refused = Tally()
        self.version_gaps = Tally()

    def snapshot(self) -> dict[str, dict]:
        return {name: getattr(self, name).snapshot() for name in self.__slots__}

    def absorb(self, snapshot: Mapping[str, Mapping]) -> None:
        for name in self.__slots__:
            getattr(self, name).absorb(snapshot.get(name, {}))
