"""Expiry at scale, short: 1,200 bindings with lifetimes spread over 12 s are each recorded
`expired`, and PUBLISHed, within a second of their end while REGISTERs go on; none twice.

The full run (100,000 bindings over ten minutes, SQLite and two PostgreSQL nodes) is
`python3 bench/expiry_at_scale.py`.
"""

from __future__ import annotations

import pytest

from bench.expiry_at_scale import measure


def check(result: dict) -> None:
    for seen in (result["events"], result["published"]):
        assert seen.missing == 0 and seen.duplicates == 0, seen.summary()
        assert len(seen.late) == 1200, seen.summary()
        assert seen.percentile(1.0) <= 1.0, seen.summary()
    assert set(result["tally"].statuses) == {200}, result["tally"].statuses
    assert result["tracebacks"] == 0


def test_1200_bindings_expire_on_time_on_sqlite():
    check(measure("sqlite", 1200, spread=12, lead=6, rate=50))


@pytest.mark.postgres
def test_1200_bindings_expire_on_time_once_on_two_postgresql_nodes():
    result = measure("postgresql", 1200, spread=12, lead=8, rate=50)
    check(result)
    assert len(result["by_node"]) == 2, result["by_node"]  # both nodes swept
