"""A projection of some topics (the watchers, the resource subscriptions) does not read
the whole log again at every catch-up when none of its events came: it starts where it
last found none, less an overlap for late PostgreSQL commits."""

from __future__ import annotations

from infrastructure.commands import Register, Watch
from projections import catch_up
from projections.catch_up import SCAN_OVERLAP
from domain.watcher import WatcherDialog
from tests.support import register, run_at_next_second


class Spy:
    """The recorder, with the start of every notification read kept."""

    def __init__(self, recorder) -> None:
        self.recorder, self.starts = recorder, []

    def select_notifications(self, start, *args, **kwargs):
        self.starts.append(start)
        return self.recorder.select_notifications(start, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.recorder, name)


def test_a_catch_up_with_none_of_its_topics_is_not_read_again(service):
    for n in range(SCAN_OVERLAP + 200):
        run_at_next_second(service, Register(f"u{n}", register(f"c{n}", 1,
                                                               (f"sip:u{n}@10.0.0.1", 600))))
    spy = Spy(service.app.recorder)
    service.app.recorder = spy
    try:
        catch_up(service.app, service.watchers)  # none of its topics: reads from the start
        catch_up(service.app, service.watchers)
        head = spy.recorder.max_notification_id()
        assert spy.starts[0] == 1
        assert spy.starts[-1] == head - SCAN_OVERLAP + 1
        dialog = WatcherDialog("w@phone", "ours", "theirs", "sip:w@example.com",
                               "sip:w@10.0.0.9", (), "udp")
        run_at_next_second(service, Watch("sip:u1@example.com", dialog, 600, refresh=False))
        assert catch_up(service.app, service.watchers) == 1  # a new one is found
        assert [row.aor for row in service.watchers.view.current()] == ["sip:u1@example.com"]
    finally:
        service.app.recorder = spy.recorder
