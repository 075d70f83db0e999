"""What the store costs on disk: bytes per event by kind and per refresh REGISTER, in the
event format of today (format 2) and the one before (format 1), on SQLite.

    python3 bench/retention.py [--events 1000000] [--refreshes 2000] [--aors 200]
                               [--cache DIR] [--fresh]

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
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eventsourcing.persistence import Mapper, StoredEvent  # noqa: E402

from bench.hot_path import ARRIVAL, HOST, settings_for  # noqa: E402
from bench.rebuild import cached_store, service_at  # noqa: E402
from domain import ContactEvent  # noqa: E402
from domain.binding_refresh import binding_after  # noqa: E402
from infrastructure.bootstrap import build_gateway, open_service  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--refreshes", type=int, default=2000)
    parser.add_argument("--aors", type=int, default=200)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
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


if __name__ == "__main__":
    main()
