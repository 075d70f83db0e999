"""Rebuild throughput: events per second of `rebuild` on a store of a million events.

    python3 bench/rebuild.py [--events 1000000] [--store sqlite|postgresql] [--repeat 3]
                             [--cache DIR] [--fresh] [--profile FILE]

The store is built once through the application (bench/registrar_traffic.py: REGISTERs
of 40 AoRs per 1,000 events with new bindings, refreshes, reboots, de-registrations and
lapsed bindings swept as `expired`, administrative actions, and reginfo NOTIFYs of remote
AoRs, group-committed 50 commands a transaction, the usrloc view following each commit)
and cached as DIR/pua-reginfo-rebuild-v<workload>-<events>.db (DIR defaults to /tmp;
--fresh builds it again). Each round runs `Service.rebuild`, the code path of the
`rebuild` command (store lock, `rebuild_usrloc` beside the live view, swap), in a new
process on a working copy of the store, and prints events per second, wall and
CPU seconds of that process and its peak RSS. After every round the rebuilt view must
equal the view the store built incrementally, row for row, or the script stops with the
difference. --store postgresql copies the same events, in order, into a new database on
127.0.0.1:5432 (dropped afterwards); CPU seconds then count this process, not the
server. Prints the medians of --repeat rounds. --profile writes a cProfile of the first
round (the process is also the one to give `py-spy record`: `--round URL`).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.registrar_traffic import RegistrarTraffic, fill  # noqa: E402
from bench.stores import empty_store  # noqa: E402
from infrastructure.bootstrap import Service, open_service  # noqa: E402
from infrastructure.settings import load_settings  # noqa: E402

WORKLOAD = 2  # traffic and event format version: another's cached store is not reused


def service_at(url: str, catch_up: bool = False) -> Service:
    settings = load_settings(env={}, overrides={"store": {"url": url}, "node": {"id": "bench"}})
    return open_service(settings, catch_up_views=catch_up)


def cached_store(events: int, folder: Path, fresh: bool) -> Path:
    """The SQLite store of `events` events built through the application, cached."""
    path = folder / f"pua-reginfo-rebuild-v{WORKLOAD}-{events}.db"
    if path.exists() and not fresh:
        return path
    building = path.with_suffix(".building")
    for leftover in folder.glob(building.name + "*"):
        leftover.unlink()
    started = time.perf_counter()
    service = service_at(f"sqlite:///{building}", catch_up=True)
    try:
        stored = fill(service, RegistrarTraffic(local=events // 25, remote=events // 250),
                      events)
    finally:
        service.close()
    with sqlite3.connect(building) as connection:  # the file alone holds everything
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    building.rename(path)
    for leftover in folder.glob(building.name + "*"):  # the empty log, the lock file
        leftover.unlink()
    print(f"built {path}: {stored:,} events in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)
    return path


@contextmanager
def working_store(kind: str, cached: Path) -> Iterator[str]:
    """A store URL holding the cached store's events, removed after use."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            copy = Path(folder) / "rebuild.db"
            shutil.copyfile(cached, copy)
            yield f"sqlite:///{copy}"
        return
    with empty_store(kind) as url:
        service = service_at(url)  # the schema, and the tables' names
        events, snapshots = (service.app.recorder.events_table_name,
                             service.app.snapshots.recorder.events_table_name)
        service.close()
        copy_events(cached, url, events, snapshots)
        yield url


def copy_events(cached: Path, url: str, events: str, snapshots: str) -> None:
    """The SQLite store's events and snapshots, in notification order, into PostgreSQL."""
    source = sqlite3.connect(cached)
    columns = "originator_id, originator_version, topic, state"
    with psycopg.connect(url) as target, target.cursor() as cursor:
        with cursor.copy(f"COPY {events} (notification_id, {columns}) FROM STDIN") as copy:
            for row in source.execute(f"SELECT rowid, {columns} FROM stored_events ORDER BY rowid"):
                copy.write_row((row[0], UUID(row[1]), *row[2:]))
        with cursor.copy(f"COPY {snapshots} ({columns}) FROM STDIN") as copy:
            for row in source.execute(f"SELECT {columns} FROM stored_snapshots"):
                copy.write_row((UUID(row[0]), *row[1:]))
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{events}', 'notification_id'), "
                       f"(SELECT max(notification_id) FROM {events}))")
        cursor.execute(f"ANALYZE {events}")
    source.close()


def incremental_rows(cached: Path) -> list:
    """The live view of the cached store: the one its traffic built commit by commit."""
    service = service_at(f"sqlite:///{cached}")
    try:
        assert service.view.max_tracking_id(service.app.name) == \
            service.app.recorder.max_notification_id(), "the cached view is behind its store"
        return sorted(service.view.rows(), key=lambda r: (r.aor_id, r.binding_key))
    finally:
        service.close()


def one_round(url: str, profile: Path | None) -> dict:
    """Rebuild the store's usrloc view as `rebuild` does; what it took (in this process)."""
    service = service_at(url)
    try:
        profiler = cProfile.Profile() if profile else None
        wall, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        applied = service.rebuild()
        if profiler:
            profiler.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if profiler:
            profiler.dump_stats(str(profile))
    finally:
        service.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"events": applied, "wall": wall, "cpu": cpu, "rss_mb": peak}


def check(url: str, expected: list) -> None:
    service = service_at(url)
    try:
        rows = sorted(service.view.rows(), key=lambda r: (r.aor_id, r.binding_key))
        at = service.view.max_tracking_id(service.app.name)
        end = service.app.recorder.max_notification_id()
    finally:
        service.close()
    if at != end:
        raise SystemExit(f"the rebuilt view stands at {at}, the store ends at {end}")
    if rows != expected:
        different = next((a, b) for a, b in zip(rows + [None] * len(expected),
                                                 expected + [None] * len(rows)) if a != b)
        raise SystemExit(f"the rebuilt view differs from the incremental one ({len(rows)} "
                         f"rows, {len(expected)} expected); first difference:\n"
                         f"  rebuilt:     {different[0]}\n  incremental: {different[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--fresh", action="store_true", help="build the cached store again")
    parser.add_argument("--profile", type=Path, help="cProfile of the first round")
    parser.add_argument("--round", metavar="URL", help="one rebuild of URL, as JSON")
    args = parser.parse_args()
    if args.round:
        print(json.dumps(one_round(args.round, args.profile)))
        return
    cached = cached_store(args.events, args.cache, args.fresh)
    expected = incremental_rows(cached)
    results = []
    with working_store(args.store, cached) as url:
        for attempt in range(args.repeat):
            command = [sys.executable, __file__, "--round", url]
            if args.profile and attempt == 0:
                command += ["--profile", str(args.profile)]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            results.append(json.loads(done.stdout.splitlines()[-1]))
            check(url, expected)
    for result in results:
        result["rate"] = result["events"] / result["wall"]
    events = results[0]["events"]
    median = lambda key: statistics.median(r[key] for r in results)  # noqa: E731
    print(f"{'store':<11} {'events':>9} {'events/s':>9} {'wall s':>7} {'CPU s':>7} "
          f"{'peak RSS MB':>11}  (median of {args.repeat}; {len(expected):,} bindings, "
          "equal to the incremental view)")
    print(f"{args.store:<11} {events:>9,} {median('rate'):>9,.0f} "
          f"{median('wall'):>7.1f} {median('cpu'):>7.1f} {median('rss_mb'):>11.0f}")


if __name__ == "__main__":
    main()
