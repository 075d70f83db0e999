"""When a node says it should take no traffic (/health/ready, OPTIONS)."""

from __future__ import annotations

from infrastructure.readiness import ViewLag, not_ready


def test_the_view_lag_runs_from_when_it_was_first_seen_behind():
    lag = ViewLag()
    lag.observe(100, 100, now=10.0)
    assert lag.seconds(11.0) == 0.0
    lag.observe(100, 120, now=12.0)  # behind the head of 120 since 12
    lag.observe(110, 130, now=13.0)  # still short of 120: the same lag
    assert lag.seconds(15.0) == 3.0
    lag.observe(125, 140, now=16.0)  # past 120 but behind again: measured from now
    assert lag.seconds(17.0) == 1.0
    lag.observe(140, 140, now=18.0)
    assert lag.seconds(30.0) == 0.0


def test_not_ready_while_stopping_while_the_store_is_away_or_the_view_lags():
    assert not_ready(False, None, 0.0, 5) is None
    assert not_ready(True, None, 0.0, 5) == "shutting down"
    assert not_ready(False, "connection refused", 0.0, 5) == (
        "event store unavailable: connection refused")
    assert not_ready(False, None, 4.9, 5) is None
    assert "7 s behind" in not_ready(False, None, 7.2, 5)
