"""The sweeper wakes when the next binding is due: within [0.1 s, 1 s] of its last run."""

import pytest

from infrastructure.sweeper import SWEEP_INTERVAL, SWEEP_MIN_PAUSE, sweep_pause


def test_it_wakes_when_the_next_binding_is_due():
    assert sweep_pause(next_due=1000.4, now=1000.0) == pytest.approx(0.4)


def test_an_empty_view_or_a_distant_expiry_waits_the_interval():
    assert sweep_pause(None, 1000.0) == SWEEP_INTERVAL
    assert sweep_pause(1060.0, 1000.0) == SWEEP_INTERVAL


def test_bindings_due_now_or_overdue_are_swept_after_the_least_pause():
    assert sweep_pause(999.0, 1000.0) == SWEEP_MIN_PAUSE
    assert sweep_pause(1000.01, 1000.0) == SWEEP_MIN_PAUSE


def test_a_sweep_that_expired_nothing_of_what_was_due_waits_the_interval():
    assert sweep_pause(999.0, 1000.0, wasted=True) == SWEEP_INTERVAL
