"""The wall clock, injected wherever time matters so that tests can pass their own."""

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...


class SystemClock:
    def now(self) -> float:
        """Unix seconds to the microsecond: as much as an event's timestamp holds, so that
        an expiry computed from `now` is stored as seconds after the event's time."""
        return round(time.time(), 6)

