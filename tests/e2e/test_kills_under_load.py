"""Kills under load, short: `serve` SIGKILLed at random moments while phones REGISTER
(new bindings, refreshes, de-registrations, several Call-IDs per AoR) and a notifier sends
NOTIFYs in our dialog, restarted each time: nothing acknowledged is lost, nothing applied
twice, PUBLISH resumes without a lost or duplicate document (beyond one re-send), one
SUBSCRIBE dialog. The full run (20 kills on SQLite, 10 on PostgreSQL) is
`python3 bench/kill_under_load.py`.
"""

from __future__ import annotations

import pytest

from bench.kill_under_load import run


def check(outcome) -> None:
    assert outcome.ok(), outcome.problems
    assert outcome.stream.acked is not None and outcome.publishes > 0
    assert outcome.tracebacks == 0
    assert sum(1 for ua in outcome.load.uas if ua.ack is not None) == len(outcome.load.uas)


def test_three_kills_on_sqlite():
    check(run("sqlite", kills=3, aors=20, seed=1))


@pytest.mark.postgres
def test_two_kills_on_postgresql():
    check(run("postgresql", kills=2, aors=20, seed=2))
