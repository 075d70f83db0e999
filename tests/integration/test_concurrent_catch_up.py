"""Several processes catching the usrloc view up at once apply each event exactly once."""

from __future__ import annotations

import threading

from infrastructure.bootstrap import open_service
from infrastructure.commands import Register
from tests.support import open_test_service, register, settings_for

T0 = 1_900_000_000.0


def test_racing_catch_ups_agree_and_none_fails(store_url):
    writer = open_test_service(store_url)
    for n in range(300):
        writer.app.run(Register(f"sip:user{n % 60}@example.com",
                            register(f"c{n % 60}", n + 1, (f"sip:u{n % 60}@10.0.0.{n % 7}", 3600))),
                            T0 + n)
    readers = [open_service(settings_for(store_url), catch_up_views=False) for _ in range(3)]
    assert readers[0].view.max_tracking_id(writer.app.name) is None
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(readers))

    def race(service) -> None:
        try:
            barrier.wait()
            service.catch_up()
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=race, args=(r,)) for r in readers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        last = writer.app.recorder.max_notification_id()
        assert readers[0].view.max_tracking_id(writer.app.name) == last
        rows = readers[0].view.rows()
        assert len(rows) == len({(r.aor_id, r.binding_key) for r in rows})
        writer.rebuild()
        assert writer.view.rows() == rows
    finally:
        for service in (writer, *readers):
            service.close()
