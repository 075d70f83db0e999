"""Expiry at scale: bindings with random lifetimes each recorded `expired` (and PUBLISHed)
within a second of their end, while REGISTER traffic goes on.

    python3 bench/expiry_at_scale.py [--bindings 100000] [--spread 600] [--lead 90]
                                     [--stores sqlite,postgresql] [--rate 100]

Per store: `--bindings` bindings (4 per AoR) are seeded through the store's command path
in batches (bench/bulk_seed.py) with lifetimes drawn uniformly from [lead, lead + spread)
seconds; then `serve` starts (one node on SQLite, two on PostgreSQL, publishing to a
loopback presence server that records every PUBLISH) and simulated UAs keep refreshing
other AoRs at about `--rate` REGISTERs/s spread over the nodes, until every seeded binding
is due plus a few seconds. Printed per store: the lateness of each `expired` event (its
time minus the binding's expiry: median, p99, max, how many over one second),
duplicates (a binding expired twice), missing ones, the same for the first PUBLISHed
document announcing each expiry, and the REGISTERs' answers. Every process started here
is stopped by its PID; databases are created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bulk_seed import seed_bindings  # noqa: E402
from bench.expiry_audit import Lateness, expired_events, lateness  # noqa: E402
from bench.presence_peer import PresencePeer  # noqa: E402
from bench.register_load import HOST, RegisterLoad, Ua  # noqa: E402
from bench.serve_node import Node  # noqa: E402
from bench.sipp_runs import free_port  # noqa: E402
from bench.stores import empty_store  # noqa: E402
from infrastructure.bootstrap import open_service  # noqa: E402
from infrastructure.settings import load_settings  # noqa: E402

NODES = {"sqlite": 1, "postgresql": 2}
SETTLE = 5.0  # seconds after the last expiry before the counts are taken
UA_PAUSE = 1.0  # seconds between two REGISTERs of one background UA


def publishing(peer_port: int) -> str:
    return (f'[reginfo]\ndefault_domain = "example.com"\npublish_reginfo = true\n'
            f'outbound_proxy = "sip:{HOST}:{peer_port}"\n')


def open_store(url: str, node: str = "seed"):
    settings = load_settings(env={}, overrides={"store": {"url": url}, "node": {"id": node}})
    return open_service(settings)


def background(nodes: list[Node], rate: int) -> RegisterLoad:
    """UAs refreshing AoRs of their own, about `rate` REGISTERs/s over all nodes."""
    uas = [Ua(f"bg{i}", f"bg-{i}-{uuid.uuid4().hex[:8]}", f"sip:bg{i}@198.51.100.{i % 250 + 1}",
              (HOST, nodes[i % len(nodes)].port), expires=3600) for i in range(rate)]
    return RegisterLoad(uas, pause=UA_PAUSE)


def measure(store: str, bindings: int, spread: float, lead: float, rate: int,
            nodes_count: int | None = None) -> dict:
    """One run; the lateness in the store and at the presence server, and the load's tally."""
    with tempfile.TemporaryDirectory() as folder, empty_store(store, Path(folder)) as url:
        service = open_store(url)
        started = time.time()
        expected = seed_bindings(service, bindings, lead, spread)
        seeded = time.time() - started
        service.close()
        peer = PresencePeer.start(free_port())
        nodes = [Node(url, Path(folder), f"expiry-{n}", settings=publishing(peer.port))
                 for n in range(nodes_count or NODES[store])]
        try:
            for node in nodes:
                node.start()
            serving = time.time()
            load = background(nodes, rate)

            async def traffic() -> None:
                running = asyncio.get_running_loop().create_task(load.run())
                await asyncio.sleep(max(expected.values()) + SETTLE - time.time())
                load.stop()
                await running

            asyncio.run(traffic())
        finally:
            for node in nodes:
                node.stop()
            peer.stop()
        service = open_store(url, "audit")
        events = expired_events(service)
        service.close()
        tracebacks = sum(n.tracebacks() for n in nodes)
    with peer.lock:
        announced = [(c, p.at) for p in peer.received for c in p.contacts("expired")]
    return {"store": store, "nodes": len(nodes), "seeded_s": seeded,
            "first_due_after_start": min(expected.values()) - serving,
            "events": lateness(expected, [(c, t) for c, t, _, _ in events]),
            "published": lateness(expected, announced),
            "by_node": {n: sum(1 for *_, node in events if node == n) for n in
                        sorted({node for *_, node in events})},
            "tally": load.tally, "tracebacks": tracebacks}


def report(result: dict) -> None:
    events: Lateness = result["events"]
    tally = result["tally"]
    print(f"{result['store']} ({result['nodes']} node(s)): seeded in {result['seeded_s']:.1f} s, "
          f"first expiry {result['first_due_after_start']:.1f} s after serve answered")
    print(f"  store:   {events.summary()}; expired by node {result['by_node']}")
    print(f"  PUBLISH: {result['published'].summary()}")
    print(f"  REGISTERs meanwhile: {tally.sent} sent, answers {dict(sorted(tally.statuses.items()))}, "
          f"timeouts {tally.timeouts}; tracebacks in the logs {result['tracebacks']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bindings", type=int, default=100_000)
    parser.add_argument("--spread", type=float, default=600.0)
    parser.add_argument("--lead", type=float, default=90.0,
                        help="seconds from the seed to the first expiry (seeding and start-up)")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--rate", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores, shared)")
    for store in args.stores.split(","):
        report(measure(store, args.bindings, args.spread, args.lead, args.rate))


if __name__ == "__main__":
    main()
