"""TIME arguments (`audit --at`, `prune --before`): ISO-8601 with or without an offset, or
Unix seconds; a time without an offset is local time, as `date` reads it."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone

import pytest

from infrastructure.timeparse import TimeFormatError, parse_time


@pytest.fixture
def berlin():
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    yield
    if saved is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = saved
    time.tzset()


def test_a_time_without_an_offset_is_local_time(berlin):
    assert parse_time("2026-11-26T12:00:00") == datetime(2026, 11, 26, 11, 0, tzinfo=timezone.utc)
    assert parse_time("2026-07-01T12:00") == datetime(2026, 7, 1, 10, 0, tzinfo=timezone.utc)


def test_offsets_and_unix_seconds_mean_what_they_say(berlin):
    assert parse_time("2026-11-26T12:00:00Z") == datetime(2026, 11, 26, 12, tzinfo=timezone.utc)
    assert parse_time("2026-11-26T13:00:00+01:00") == datetime(2026, 11, 26, 12,
                                                               tzinfo=timezone.utc)
    assert parse_time("1800000000") == datetime.fromtimestamp(1_800_000_000, timezone.utc)
    with pytest.raises(TimeFormatError, match="bad time 'yesterday'"):
        parse_time("yesterday")
