"""What the store costs on disk: bytes per event by kind and per refresh REGISTER, in the
event format of today (format 2) and the one before (format 1), on SQLite.

    python3 bench/retention.py [--events 1000000] [--refreshes 2000] [--aors 200]
                               [--cache DIR] [--fresh] [--during 10] [--prune-only]

1. Growth per refresh REGISTER, as an operator sees it: `--aors` phones (outbound
   +sip.instance, a real User-Agent) register through the gateway exactly as `serve`
   takes them (SIP bytes in, group commit, usrloc view), then refresh `--refreshes` times
   in all (same Call-ID, CSeq + 1); the growth of the database files (after a WAL
   checkpoint) divided by the refreshes. Then the same for 20 phones refreshing 300
   times each, so that each AoR's snapshots (one every 100 events) are counted too.
2. The same events stored in both formats: every stored event of that history, and of a
   store of `--events` events of bench/registrar_traffic.py (REGISTERs, refreshes,
   reboots, de-registrations, expiry, administrative actions, reginfo NOTIFYs; the store
   bench/rebuild.py uses, cached in DIR), is written again into two event-only SQLite
   stores: as stored (format 2), and in format 1, each refresh resolved to its whole
   binding as the code before stored it. Printed: the state bytes per event by kind, and
   the store bytes per event (file size / events: table, index and page overhead
   included) and per refresh, for both.
3. A prune of 90 % of bench/rebuild.py's store (`--events`; the time of the event at
   90 % of the log) on a copy of it: what it reported, how long it took, the store's
   size before and after (the files, the pages in use, and after a VACUUM: SQLite keeps
   deleted pages for reuse). Then the same prune at `serve`'s pace (it rests as long as
   it works) on another copy, with REGISTER
   refreshes of the store's own local bindings going on through the application as
   `serve` commits them (group commits of 50, the usrloc view following; measured once
   each binding was refreshed once, its AoR then cached) for `--during` seconds before
   it, while it runs, and `--during` seconds after: the rate before, during and after,
   and any request that failed.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eventsourcing.persistence import IntegrityError, Mapper, StoredEvent  # noqa: E402

from bench.hot_path import ARRIVAL, HOST, settings_for  # noqa: E402
from bench.rebuild import cached_store, service_at  # noqa: E402
from bench.registrar_traffic import BATCH  # noqa: E402
from domain import ContactEvent, ContactUpdate, RegisterRequest  # noqa: E402
from domain.binding_refresh import binding_after  # noqa: E402
from infrastructure.aggregate_cache import AggregateCache  # noqa: E402
from infrastructure.bootstrap import SERVE_PRUNE_PACE, build_gateway, open_service  # noqa: E402
from infrastructure.command_handlers import execute  # noqa: E402
from infrastructure.commands import Register  # noqa: E402
from infrastructure.settings import load_settings  # noqa: E402
from infrastructure.unit_of_work import UnitOfWork  # noqa: E402

CHUNK = 10_000
SNAPSHOTS = 3  # per AoR in the long-life measurement


def register(n: int, cseq: int) -> bytes:
    user = f"p{n:05d}"
    return (f"REGISTER sip:example.com SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:5095;branch=z9hG4bK-{n}-{cseq}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:{user}@example.com>;tag={n}-{cseq}\r\n"
            f"To: <sip:{user}@example.com>\r\nCall-ID: {user}-boot1@192.0.2.10\r\n"
            f"CSeq: {cseq} REGISTER\r\n"
            f"Contact: <sip:{user}@192.0.2.10:5062;transport=udp>;reg-id=1;"
            f"+sip.instance=\"<urn:uuid:00000000-0000-4000-8000-{n:012d}>\"\r\n"
            f"Expires: 600\r\nUser-Agent: Yealink SIP-T46S 66.86.0.15\r\n"
            f"Content-Length: 0\r\n\r\n").encode()


async def drive(gateway, messages: list[bytes]) -> int:
    answered: list[bytes] = []
    gateway.executor.start()
    for start in range(0, len(messages), 100):
        for data in messages[start:start + 100]:
            gateway.core.receive_datagram(data, ARRIVAL, lambda d, _: answered.append(d))
        await asyncio.gather(*gateway.core.tasks)
        await gateway._in_store(gateway._project_committed)
    await gateway.executor.stop()
    gateway.store_thread.shutdown(wait=True)
    return sum(1 for data in answered if data.startswith(b"SIP/2.0 200"))


def send(url: str, messages: list[bytes]) -> None:
    service = open_service(settings_for(url, publish=False))
    try:
        ok = asyncio.run(drive(build_gateway(service), messages))
    finally:
        service.close()
    if ok != len(messages):
        raise SystemExit(f"only {ok} of {len(messages)} REGISTERs were answered 200")


def files_size(path: Path) -> int:
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def refresh_growth(folder: Path, aors: int, refreshes: int) -> tuple[Path, int, float]:
    """The store after the registrations and refreshes, the events before the refreshes,
    and the growth of its files per refresh."""
    path = folder / "refreshes.db"
    url = f"sqlite:///{path}"
    send(url, [register(n, 1) for n in range(aors)])
    before, events_before = files_size(path), stored_count(path)
    send(url, [register(n % aors, 2 + n // aors) for n in range(refreshes)])
    return path, events_before, (files_size(path) - before) / refreshes


def stored_count(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT count(*) FROM stored_events").fetchone()[0]


def both_formats(source: Path, folder: Path) -> tuple[list, list]:
    """The source store's events as stored (format 2) and in format 1, in log order."""
    service = service_at(f"sqlite:///{source}")
    try:
        app = service.app
        mapper, held = app.mapper, {}
        format2, format1 = [], []
        position = 0
        while True:
            batch = app.recorder.select_notifications(position + 1, limit=CHUNK)
            if not batch:
                return format2, format1
            for stored in batch:
                format2.append(stored)
                format1.append(as_format1(mapper, mapper.to_domain_event(stored), held))
            position = batch[-1].id
    finally:
        service.close()


def as_format1(mapper: Mapper, event, held: dict) -> StoredEvent:
    """The event as the code before format 2 stored it: refreshes as whole bindings."""
    if isinstance(event, ContactEvent):
        key = (event.originator_id, event.binding.key)
        binding = binding_after(event.binding, held.get(key))
        if event.TERMINATES:
            held.pop(key, None)
        else:
            held[key] = binding
        whole = object.__new__(type(event))
        object.__setattr__(whole, "__dict__", {**vars(event), "binding": binding})
        event = whole
    return Mapper.to_stored_event(mapper, event)


def store_of(events: list, path: Path) -> int:
    """Write `events` into a new event-only store as an application appends them."""
    service = service_at(f"sqlite:///{path}")
    try:
        for start in range(0, len(events), CHUNK):
            service.app.recorder.insert_events([
                StoredEvent(e.originator_id, e.originator_version, e.topic, e.state)
                for e in events[start:start + CHUNK]])
    finally:
        service.close()
    return files_size(path)


def by_kind(events: list) -> dict[str, tuple[int, int]]:
    kinds: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for event in events:
        kind = kinds[event.topic.rsplit(":", 1)[-1]]
        kind[0] += 1
        kind[1] += len(event.state)
    return {k: (n, size) for k, (n, size) in sorted(kinds.items())}


def report(title: str, source: Path, folder: Path, refreshes_from: int | None = None) -> None:
    format2, format1 = both_formats(source, folder)
    print(f"\n{title}: {len(format2):,} events")
    kinds2, kinds1 = by_kind(format2), by_kind(format1)
    print(f"  {'kind':<26}{'events':>10}{'format 1 B':>12}{'format 2 B':>12}")
    for kind, (n, size2) in kinds2.items():
        print(f"  {kind:<26}{n:>10,}{kinds1[kind][1] / n:>12.0f}{size2 / n:>12.0f}")
    for name, events in (("format 1", format1), ("format 2", format2)):
        whole = store_of(events, folder / f"{name.replace(' ', '')}.db")
        line = f"  {name}: store {whole / 1e6:.1f} MB, {whole / len(events):.0f} B per event"
        if refreshes_from is not None:
            part = store_of(events[:refreshes_from], folder / f"{name.replace(' ', '')}-0.db")
            refreshes = len(events) - refreshes_from
            line += f", {(whole - part) / refreshes:.0f} B per refresh"
        print(line)


class Moving:
    """A clock that starts at `start` and goes on with the wall clock."""

    def __init__(self, start: float):
        self.offset = start - time.time()

    def now(self) -> float:
        return round(time.time() + self.offset, 6)


def store_state(path: Path) -> tuple[int, int, int, int]:
    """File bytes, bytes of pages in use, events and snapshots of a SQLite store."""
    size = files_size(path)
    with sqlite3.connect(path) as connection:
        pages, free, page = (connection.execute(f"PRAGMA {name}").fetchone()[0]
                             for name in ("page_count", "freelist_count", "page_size"))
        events = connection.execute("SELECT count(*) FROM stored_events").fetchone()[0]
        snapshots = connection.execute("SELECT count(*) FROM stored_snapshots").fetchone()[0]
    return size, (pages - free) * page, events, snapshots


class Refresher(threading.Thread):
    """REGISTER refreshes of the store's own local bindings, group-committed, counted."""

    def __init__(self, service, rows):
        super().__init__(daemon=True)
        self.service, self.rows = service, rows
        self.done: list[float] = []  # the time each REGISTER was committed
        self.failed: list[str] = []
        self.stopping = threading.Event()
        self.warm = threading.Event()  # every binding refreshed once: its AoR is cached

    def run(self) -> None:
        cache = AggregateCache(len(self.rows) + 1000)
        cseq = {row.binding_key: row.cseq for row in self.rows}
        n = 0
        while not self.stopping.is_set():
            batch = [self.rows[(n + i) % len(self.rows)] for i in range(BATCH)]
            n += BATCH
            try:
                self._commit(batch, cseq, cache)
            except Exception as error:  # noqa: BLE001 - every failure is counted
                self.failed.append(f"{type(error).__name__}: {error}")
            if n >= len(self.rows):
                self.warm.set()

    def _commit(self, batch, cseq, cache) -> None:
        now = self.service.clock.now()
        for attempt in range(5):
            uow = UnitOfWork(self.service.app, now, cache)
            for row in batch:
                uow.begin_command()
                update = ContactUpdate(row.contact, 3600, instance=row.instance,
                                       reg_id=row.reg_id)
                execute(uow, Register(row.aor, RegisterRequest(
                    row.callid, cseq[row.binding_key] + 1, (update,))))
            try:
                recordings = uow.commit()
            except IntegrityError:  # decided again on fresh aggregates, as serve does
                uow.abandon()
                continue
            for row in batch:
                cseq[row.binding_key] += 1
            self.service.project(recordings, publishing=False)
            self.done.extend([time.perf_counter()] * len(batch))
            return
        raise RuntimeError("a batch conflicted five times")

    def rate(self, start: float, end: float) -> float:
        return sum(1 for t in self.done if start <= t < end) / (end - start)


def prune_time(path: Path) -> tuple[float, float, int]:
    """The time of the event at 90 % of the log, the newest event's, and the events."""
    with sqlite3.connect(path) as connection:
        last, count = connection.execute(
            "SELECT max(rowid), count(*) FROM stored_events").fetchone()
    probe = service_at(f"sqlite:///{path}")
    try:
        [at_90] = probe.app.recorder.select_notifications(int(last * 0.9), limit=1)
        [newest] = probe.app.recorder.select_notifications(last, limit=1)
        return tuple(probe.app.mapper.to_domain_event(n).timestamp.timestamp()
                     for n in (at_90, newest)) + (count,)
    finally:
        probe.close()


def service_after(path: Path, end: float):
    settings = load_settings(env={}, overrides={"store": {"url": f"sqlite:///{path}"},
                                                "node": {"id": "bench"}})
    return open_service(settings, clock=Moving(end + 3600))


def prune_run(source: Path, folder: Path, during: float) -> None:
    quiet, busy = folder / "quiet.db", folder / "busy.db"
    shutil.copy(source, quiet)
    before, end, count = prune_time(quiet)
    size, used, events, snapshots = store_state(quiet)
    service = service_after(quiet, end)
    try:
        started = time.perf_counter()
        report = service.prune(before)
        took = time.perf_counter() - started
    finally:
        service.close()
    after = store_state(quiet)
    with sqlite3.connect(quiet) as connection:
        connection.execute("VACUUM")
    vacuumed = files_size(quiet)
    print(f"\nprune of 90 % of bench/rebuild.py's store ({count:,} events), alone:")
    print(f"  {report.summary()}; {took:.1f} s")
    print(f"  before: files {size / 1e6:.0f} MB, {events:,} events, {snapshots:,} snapshots")
    print(f"  after:  files {after[0] / 1e6:.0f} MB of which {after[1] / 1e6:.0f} MB in "
          f"use (SQLite keeps deleted pages for reuse; {vacuumed / 1e6:.0f} MB after VACUUM), "
          f"{after[2]:,} events, {after[3]:,} snapshots")

    shutil.copy(source, busy)
    service = service_after(busy, end)
    try:
        rows = [row for row in service.view.rows() if row.origin != "notify"]
        refresher = Refresher(service, rows)
        refresher.start()
        refresher.warm.wait()
        started = time.perf_counter()
        time.sleep(during)
        prune_start = time.perf_counter()
        service.prune(before, pace=SERVE_PRUNE_PACE)
        prune_end = time.perf_counter()
        time.sleep(during)
        refresher.stopping.set()
        refresher.join()
        ended = time.perf_counter()
    finally:
        service.close()
    failed = f" ({refresher.failed[0]})" if refresher.failed else ""
    print(f"the same prune at serve's pace ({SERVE_PRUNE_PACE:g} s of rest per second of "
          f"work) while {len(rows):,} local bindings are refreshed in the same process "
          f"(group commits of {BATCH}, usrloc view following):")
    print(f"  REGISTERs/s before it {refresher.rate(started, prune_start):,.0f}, during it "
          f"({prune_end - prune_start:.1f} s) {refresher.rate(prune_start, prune_end):,.0f}, "
          f"after it {refresher.rate(prune_end, ended):,.0f}; "
          f"failed: {len(refresher.failed)}{failed}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--refreshes", type=int, default=2000)
    parser.add_argument("--aors", type=int, default=200)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--during", type=float, default=10.0,
                        help="seconds of REGISTERs before the prune starts")
    parser.add_argument("--prune-only", action="store_true", help="only part 3")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        if args.prune_only:
            prune_run(cached_store(args.events, args.cache, args.fresh), folder, args.during)
            return
        long_life = folder / "long"
        long_life.mkdir()
        _, _, steady = refresh_growth(long_life, 20, 20 * SNAPSHOTS * 100)
        path, before, growth = refresh_growth(folder, args.aors, args.refreshes)
        print(f"refresh REGISTER through the gateway, format 2, growth of the database files "
              f"(view included):\n  {args.aors} phones, {args.refreshes} refreshes: {growth:.0f} "
              f"B per refresh\n  20 phones, {SNAPSHOTS * 100} refreshes each (a snapshot of "
              f"each AoR every 100 events included): {steady:.0f} B per refresh")
        report("the same history, events only", path, folder, refreshes_from=before)
        if args.events:
            source = cached_store(args.events, args.cache, args.fresh)
            report("bench/rebuild.py's store", source, folder)
            prune_run(source, folder, args.during)


if __name__ == "__main__":
    main()
