"""The wall clock, injected wherever time matters so that tests can pass their own."""

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

