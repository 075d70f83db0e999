"""Propagation time between a real Kamailio 5.6 and `serve`, in both directions.

    python3 bench/interop_propagation.py [--count 40]

The interop suite's harness (tests/interop/conftest.py) starts a Kamailio presence server,
a Kamailio registrar (pua_reginfo, subscribed to bob with reginfo_subscribe) and `serve`
(SQLite store, rfc mode, subscribed to alice), all on loopback, stopped by PID at the end.
Then, one REGISTER at a time (sipp, a new contact each, Expires 600, removed again with
Expires 0 once it has arrived, so each AoR keeps at most one binding):

- Kamailio -> us: REGISTER alice at the Kamailio registrar; from the 200 OK (sipp's trace
  time) until the binding is in our usrloc view (polled in the SQLite file every 2 ms);
- us -> Kamailio: REGISTER bob at `serve`; from the 200 OK until `kamcmd ul.dump` of the
  Kamailio registrar lists it (polled as fast as kamcmd answers, ~5-10 ms per call).

Printed: count, median, 99th percentile and maximum per direction, in milliseconds. The
polling interval is included in the numbers (about 2 ms and one kamcmd round trip).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import Gateways  # noqa: E402
from tests.interop.conftest import (KamailioLab, Registrations, start_service,  # noqa: E402
                                    wait_for)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def in_our_view(database: Path, contact: str) -> bool:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as db:
        try:
            return db.execute("SELECT 1 FROM usrloc_location WHERE contact = ?",
                              (contact,)).fetchone() is not None
        except sqlite3.OperationalError:  # locked by a commit: look again
            return False


def measure(count: int, workdir: Path) -> dict[str, list[float]]:
    lab, gateways = KamailioLab(workdir), Gateways(workdir)
    results: dict[str, list[float]] = {"kamailio -> us": [], "us -> kamailio": []}
    try:
        presence = lab.start_presence()
        registrar = lab.start_registrar(presence)
        registrar.reginfo_subscribe("sip:bob@example.com", 3600)
        database = workdir / "bench.db"
        us = start_service(gateways, f"sqlite:///{database}", presence,
                           ["sip:alice@example.com"])
        wait_for(lambda: '"state": "active"' in us.cli("status", "--json").stdout, 10,
                 "our subscription", us.log)
        sipp = __import__("shutil").which("sipp")
        at_kamailio = Registrations(sipp, workdir, registrar.port)
        at_us = Registrations(sipp, workdir, us.port)
        for n in range(count):
            contact = f"sip:alice@127.0.0.1:{20000 + n}"
            accepted = at_kamailio.register("alice", f"bench-alice-{n}", 1, f"<{contact}>", 600)
            deadline = time.monotonic() + 10
            while not in_our_view(database, contact):
                assert time.monotonic() < deadline, f"{contact} not in our view\n{us.log()}"
                time.sleep(0.002)
            results["kamailio -> us"].append(time.time() - accepted)
            at_kamailio.register("alice", f"bench-alice-{n}", 2, f"<{contact}>", 0)
            wait_for(lambda: not in_our_view(database, contact), 10, "removal", us.log)

            contact = f"sip:bob@127.0.0.1:{30000 + n}"
            accepted = at_us.register("bob", f"bench-bob-{n}", 1, f"<{contact}>", 600)
            deadline = time.monotonic() + 10
            while not any(c.address == contact for c in registrar.ul_dump()):
                assert time.monotonic() < deadline, f"{contact} not in ul.dump\n{lab.logs()}"
            results["us -> kamailio"].append(time.time() - accepted)
            at_us.register("bob", f"bench-bob-{n}", 2, f"<{contact}>", 0)
            wait_for(lambda: not any(c.address == contact for c in registrar.ul_dump()), 10,
                     "removal", lab.logs)
            print(f"{n + 1}/{count}", end="\r", file=sys.stderr, flush=True)
        at_kamailio.stop_all()
        at_us.stop_all()
    finally:
        gateways.stop_all()
        lab.stop_all()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40, help="REGISTERs per direction")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="interop-bench-") as workdir:
        results = measure(args.count, Path(workdir))
    print(f"{'direction':<16} {'count':>5} {'median ms':>10} {'p99 ms':>8} {'max ms':>8}")
    for direction, values in results.items():
        ms = [v * 1000 for v in values]
        print(f"{direction:<16} {len(ms):>5} {statistics.median(ms):>10.1f} "
              f"{percentile(ms, 0.99):>8.1f} {max(ms):>8.1f}")


if __name__ == "__main__":
    main()
