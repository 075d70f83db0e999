"""Reliability probe: kills under load, two nodes on hot AoRs, online rebuilds.

    python3 bench/reliability_probe.py [--quick] [--only kills,hot,rebuild] [--udp-workers N]

Drives real `serve` processes over UDP with simulated UAs (bench/register_load.py: each
UA retransmits like an RFC 3261 client and remembers every 200 it got) and prints what an
operator would want to know:

- kills: one node on SQLite, 400 UAs refreshing (about 200 REGISTER/s); `serve` is
  SIGKILLed every 3 s (12 times, 4 with --quick) and restarted on the same store. The UAs
  retransmit across each restart. Printed: acknowledged REGISTERs, answers by status
  (5xx counted apart), acknowledged bindings missing or wrong in the view afterwards.
- hot: two nodes on one PostgreSQL database, 20 UAs per node on 5 shared AoRs, each UA
  sending its next REGISTER as soon as the last was answered (150 each, 40 with --quick).
  Printed: answers by status, median and p99 latency, acknowledged bindings missing.
- rebuild: one node on PostgreSQL taking about 100 REGISTER/s on 100 AoRs, 300 other AoRs
  registered once; `pua-reginfo rebuild` runs 8 times (3 with --quick) while a reader
  counts the view's rows all along. Printed: each rebuild's result line, the smallest
  count any reader saw, and whether the view equals a quiet rebuild afterwards.

`--udp-workers N`: every serve runs with [listen] udp_workers = N (a SIGKILL then hits
serve only; its workers exit by themselves, and the restarted serve starts new ones).
Every process started here is stopped by its PID; databases are created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.register_load import HOST, RegisterLoad, Ua, check_acknowledged, median  # noqa: E402
from bench.serve_node import Node, cli, view_rows  # noqa: E402
from bench.stores import empty_store  # noqa: E402


UDP_WORKERS = 0  # [listen] udp_workers of every node (--udp-workers)


def new_node(store_url: str, folder: Path, name: str) -> Node:
    return Node(store_url, folder, name, udp_workers=UDP_WORKERS)


def uas_for(node: Node, users: list[str], tag: str) -> list[Ua]:
    return [Ua(user, f"{tag}-{i}-{uuid.uuid4().hex[:8]}", f"sip:{tag}{i}@10.{i // 250}.{i % 250}.9",
               (HOST, node.port)) for i, user in enumerate(users)]


def report(title: str, load: RegisterLoad, problems: list[str], extra: str = "") -> None:
    tally = load.tally
    acked = sum(1 for ua in load.uas if ua.ack is not None)
    latencies = sorted(tally.latencies)
    p99 = latencies[int(len(latencies) * 0.99)] if latencies else float("nan")
    print(f"{title}: {tally.sent} REGISTER transactions, answers {dict(sorted(tally.statuses.items()))}, "
          f"5xx {sum(tally.fives().values())}, timeouts {tally.timeouts}, "
          f"retransmissions {tally.retransmissions}; latency median {median(latencies) * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms; UAs with an acknowledged binding {acked}; "
          f"acknowledged bindings lost or wrong {len(problems)}{extra}")
    for problem in problems[:10]:
        print(f"  {problem}")


# Scenarios ---------------------------------------------------------------------------

def kills(quick: bool) -> None:
    times = 4 if quick else 12
    with tempfile.TemporaryDirectory() as folder, empty_store("sqlite", Path(folder)) as url:
        node = new_node(url, Path(folder), "killed")
        node.start()
        uas = uas_for(node, [f"user{i}" for i in range(400)], "k")
        load = RegisterLoad(uas, pause=2.0)

        async def scenario() -> None:
            running = asyncio.get_running_loop().create_task(load.run())
            for _ in range(times):
                await asyncio.sleep(3.0)
                node.kill()
                await asyncio.to_thread(node.start)
            await asyncio.sleep(5.0)  # retransmissions across the last restart settle
            load.stop()
            await running

        asyncio.run(scenario())
        node.stop()
        problems = check_acknowledged(uas, view_rows(url))
        report(f"kills ({times} SIGKILLs, SQLite)", load, problems,
               f"; tracebacks in the log {node.tracebacks()}")


def hot(quick: bool) -> None:
    each = 40 if quick else 150
    with tempfile.TemporaryDirectory() as folder, empty_store("postgresql") as url:
        cli(url, "query")  # the schema, before the nodes
        nodes = [new_node(url, Path(folder), f"hot-{n}") for n in range(2)]
        for node in nodes:
            node.start()
        uas = [ua for n, node in enumerate(nodes)
               for ua in uas_for(node, [f"hot{i % 5}" for i in range(20)], f"n{n}-")]
        load = RegisterLoad(uas)
        started = time.monotonic()
        asyncio.run(load.run(registers_each=each))
        seconds = time.monotonic() - started
        for node in nodes:
            node.stop()
        problems = check_acknowledged(uas, view_rows(url))
        report("hot (2 nodes, PostgreSQL, 5 AoRs, 40 UAs)", load, problems,
               f"; {load.tally.sent / seconds:.0f} REGISTER/s; tracebacks "
               f"{sum(n.tracebacks() for n in nodes)}")


def rebuild(quick: bool) -> None:
    rounds = 3 if quick else 8
    with tempfile.TemporaryDirectory() as folder, empty_store("postgresql") as url:
        node = new_node(url, Path(folder), "rebuilt")
        node.start()
        quiet = uas_for(node, [f"quiet{i}" for i in range(300)], "q")
        asyncio.run(RegisterLoad(quiet).run(registers_each=1))
        busy = uas_for(node, [f"busy{i}" for i in range(100)], "b")
        load = RegisterLoad(busy, pause=1.0)
        smallest: list[int] = []
        reading = threading.Event()

        def reader() -> None:
            with psycopg.connect(url, autocommit=True) as connection:
                while not reading.is_set():
                    smallest.append(connection.execute(
                        "SELECT COUNT(*) FROM usrloc_location").fetchone()[0])

        results: list[str] = []

        async def scenario() -> None:
            running = asyncio.get_running_loop().create_task(load.run())
            await asyncio.sleep(2.0)
            watcher = threading.Thread(target=reader)
            watcher.start()
            for _ in range(rounds):
                result = await asyncio.to_thread(cli, url, "rebuild")
                results.append((result.stdout.strip().splitlines() or [result.stderr.strip()])[-1]
                               if result.returncode == 0 else f"FAILED: {result.stderr.strip()}")
                await asyncio.sleep(0.5)
            reading.set()
            watcher.join()
            load.stop()
            await running

        asyncio.run(scenario())
        time.sleep(1.0)  # the node's projector applies the last commits
        live = view_rows(url)
        node.stop()
        result = cli(url, "rebuild")
        rebuilt = view_rows(url)
        problems = check_acknowledged(quiet + busy, live)
        for line in results:
            print(f"  rebuild: {line}")
        key = lambda r: (r["aor"], r["contact"])  # noqa: E731
        print(f"rebuild ({rounds} online rebuilds, PostgreSQL): smallest view any reader saw "
              f"{min(smallest) if smallest else 'n/a'} rows over {len(smallest)} reads "
              f"(at least {len(quiet)} expected); view after the load {len(live)} rows; "
              f"equal to a quiet rebuild: {sorted(live, key=key) == sorted(rebuilt, key=key)} "
              f"({result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr}); "
              f"5xx {sum(load.tally.fives().values())}; acknowledged bindings lost or wrong "
              f"{len(problems)}; tracebacks {node.tracebacks()}")


SCENARIOS = {"kills": kills, "hot": hot, "rebuild": rebuild}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=",".join(SCENARIOS))
    parser.add_argument("--udp-workers", type=int, default=0)
    args = parser.parse_args()
    global UDP_WORKERS
    UDP_WORKERS = args.udp_workers
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    for name in args.only.split(","):
        SCENARIOS[name](args.quick)


if __name__ == "__main__":
    main()
