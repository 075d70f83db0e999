"""Helpers shared by tests: settings for a store, and small REGISTER builders."""

from __future__ import annotations

from domain import ContactUpdate, RegisterRequest
from infrastructure.bootstrap import Service, open_service
from infrastructure.settings import Settings, load_settings


class FakeClock:
    """A clock that moves only when the test says so."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.current = now

    def now(self) -> float:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += seconds


def settings_for(store_url: str, **usrloc: bool) -> Settings:
    return load_settings(overrides={"store": {"url": store_url}, "node": {"id": "test-node"},
                                    "usrloc": usrloc})


def open_test_service(store_url: str, clock: FakeClock | None = None, **usrloc: bool) -> Service:
    return open_service(settings_for(store_url, **usrloc), clock=clock)


def clocked_service(store_url: str, default_domain: str = "example.com") -> Service:
    """A service on `store_url` whose clock moves only by `run_at_next_second`."""
    settings = load_settings(overrides={"store": {"url": store_url}, "node": {"id": "test-node"},
                                        "reginfo": {"default_domain": default_domain}})
    return open_service(settings, clock=FakeClock())


def run_at_next_second(service: Service, command):
    """Run `command` one second after the last one."""
    service.clock.advance(1)
    return service.app.run(command, service.clock.now())


def register(callid: str, cseq: int, *contacts: tuple[str, int], **extra) -> RegisterRequest:
    """A REGISTER with (contact URI, expires) pairs."""
    return RegisterRequest(callid=callid, cseq=cseq,
                           contacts=tuple(ContactUpdate(uri, expires) for uri, expires in contacts),
                           **extra)
