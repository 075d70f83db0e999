"""Several `serve` nodes on one PostgreSQL store: no lost update, one view, failover, and
the throughput of two nodes against one.

    python3 bench/multi_node.py [--nodes 2,3] [--seconds 10] [--throughput-seconds 10]

cluster (per node count): N nodes (own ports and `[node] id`, publishing to a recording
presence server that also takes the standing SUBSCRIBE the keeper keeps) take phones on
10 AoRs, 4 phones each, every phone sending each REGISTER to the next live node in turn
(the same Call-ID alternating between nodes), refreshes only. After `--seconds` the node
leading (keeper and notifier) is SIGKILLed; the phones carry on with the others for as
long again. Printed: answers; 200s missing a binding acknowledged before (lost updates,
bench/cluster_checks.py); seconds until another node leads; seconds from the last 200
until the shared usrloc view holds every acknowledged binding; acknowledged bindings
missing; the SUBSCRIBE dialogs the presence server saw; PUBLISH documents per node
against REGISTERs each node decided (equal: no node re-publishes another's change).

throughput: one node, then two, on a fresh store each, 64 phones (distinct AoRs) sending
back to back for `--throughput-seconds`; REGISTERs/s and the ratio. The machine has two
cores shared by the nodes, PostgreSQL and this load generator, so a second node adds no
CPU: the ratio says what the second node's coordination costs, not how a cluster of
machines scales.
Every process started here is stopped by its PID; databases are created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import urllib.request
from itertools import cycle
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402

from bench.cluster_checks import LostUpdates, decided_by_node  # noqa: E402
from bench.kill_checks import dialogs  # noqa: E402
from bench.kill_under_load import node_settings  # noqa: E402
from bench.mixed_traffic import phones  # noqa: E402
from bench.presence_peer import PresencePeer  # noqa: E402
from bench.register_load import HOST, RegisterLoad, Ua, check_acknowledged  # noqa: E402
from bench.serve_node import Node, cli, view_rows  # noqa: E402
from bench.sipp_runs import free_port  # noqa: E402
from bench.stores import empty_store  # noqa: E402
from infrastructure.bootstrap import open_service  # noqa: E402
from infrastructure.settings import load_settings  # noqa: E402

LEADING = "pua_reginfo_leading "
CONVERGE_TIMEOUT = 10.0


def start_nodes(url: str, folder: Path, count: int, peer: PresencePeer) -> list[Node]:
    """Nodes with /metrics on a port of their own (`metrics` attribute)."""
    nodes = []
    for n in range(count):
        port, metrics = free_port(), free_port()
        node = Node(url, folder, f"node-{n}", port=port, settings=node_settings(peer.port, port)
                    + f'[metrics]\nlisten = "{HOST}:{metrics}"\n')
        node.metrics = metrics
        node.start()
        nodes.append(node)
    return nodes


def leads(node: Node) -> bool:
    """Whether the node's /metrics says it runs the keeper and the notifier."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{node.metrics}/metrics", timeout=2) as page:
            return any(line.startswith(LEADING) and float(line.split()[1]) == 1
                       for line in page.read().decode().splitlines())
    except OSError:
        return False


def leader(nodes: list[Node], timeout: float = 15.0) -> tuple[Node | None, float]:
    """The live node that leads, and how long until one did."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        for node in nodes:
            if node.alive() and leads(node):
                return node, time.monotonic() - started
        time.sleep(0.05)
    return None, timeout


def alternate(nodes: list[Node]):
    """Each REGISTER of a phone goes to the next live node."""
    turns: dict[str, cycle] = {}

    def choose(ua: Ua) -> None:
        turn = turns.setdefault(ua.callid, cycle(range(len(nodes))))
        for _ in nodes:
            node = nodes[next(turn)]
            if node.alive():
                ua.target = (HOST, node.port)
                return
    return choose


def live_view(url: str) -> list[dict]:
    """The usrloc view's rows as the nodes left them (`query` would catch it up first)."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as connection:
        return connection.execute(
            "SELECT aor, contact, callid, cseq, expires FROM usrloc_location").fetchall()


def converged(url: str, uas: list[Ua], since: float) -> tuple[float, list[str]]:
    """Seconds from `since` (monotonic) until the view, as the nodes keep it, holds every
    acknowledged binding (CONVERGE_TIMEOUT if it never does), and what it then lacks."""
    while True:
        problems = check_acknowledged(uas, live_view(url))
        if not problems or time.monotonic() - since >= CONVERGE_TIMEOUT:
            return time.monotonic() - since, problems
        time.sleep(0.02)


def cluster(count: int, seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as folder, empty_store("postgresql") as url:
        cli(url, "query")  # the schema, before the nodes
        peer = PresencePeer.start(free_port())
        nodes = start_nodes(url, Path(folder), count, peer)
        try:
            first, _ = leader(nodes)
            uas = phones([f"shared{i}" for i in range(10)], 4, [(HOST, nodes[0].port)], "c")
            lost = LostUpdates()
            load = RegisterLoad(uas, pause=0.3, choose=alternate(nodes), answered=lost.answered)
            outcome: dict = {}

            async def scenario() -> None:
                running = asyncio.get_running_loop().create_task(load.run())
                await asyncio.sleep(seconds)
                first.kill()
                outcome["takeover"] = (await asyncio.to_thread(leader, nodes))[1]
                await asyncio.sleep(seconds)
                load.stop()
                outcome["converged"], outcome["behind"] = await asyncio.to_thread(
                    converged, url, uas, lost.last_answer)
                running.cancel()  # what is still out to the killed node would wait for timer F
                await asyncio.gather(running, return_exceptions=True)

            asyncio.run(scenario())
            outcome["lost"] = check_acknowledged(uas, view_rows(url))
            time.sleep(1.0)  # the last documents reach the peer
        finally:
            for node in nodes:
                node.stop()
            peer.stop()
        service = open_service(load_settings(env={}, overrides={
            "store": {"url": url}, "node": {"id": "check"}}))
        decided = decided_by_node(service)
        service.close()
        with peer.lock:
            sent = {node.name: sum(1 for p in peer.received
                                   if p.sender == node.port and p.document is not None)
                    for node in nodes}
        return {**outcome, "nodes": count, "tally": load.tally, "lost_updates": lost,
                "dialogs": dialogs(peer), "decided": decided, "published": sent,
                "killed": first.name, "tracebacks": sum(n.tracebacks() for n in nodes)}


def report_cluster(result: dict) -> None:
    tally, lost = result["tally"], result["lost_updates"]
    print(f"cluster of {result['nodes']} nodes (PostgreSQL): {tally.sent} REGISTERs, answers "
          f"{dict(sorted(tally.statuses.items()))}, timeouts {tally.timeouts}; 200s checked "
          f"{lost.answers}, missing a binding acknowledged before {len(lost.problems)}; "
          f"{result['killed']} (leading) SIGKILLed: another node led after "
          f"{result['takeover']:.1f} s; view complete {result['converged']:.2f} s after the "
          f"last 200; acknowledged bindings missing {len(result['lost'])}; SUBSCRIBE dialogs "
          f"{ {uri: len(ids) for uri, ids in result['dialogs'].items()} }; PUBLISH documents "
          f"per node {result['published']}, REGISTERs decided per node {result['decided']}; "
          f"tracebacks {result['tracebacks']}")
    for problem in (lost.problems + result["lost"] + result["behind"])[:8]:
        print(f"  {problem}")


def throughput(count: int, seconds: float) -> float:
    with tempfile.TemporaryDirectory() as folder, empty_store("postgresql") as url:
        cli(url, "query")
        nodes = [Node(url, Path(folder), f"tp-{n}") for n in range(count)]
        for node in nodes:
            node.start()
        try:
            uas = phones([f"tp{i}" for i in range(64)], 1,
                         [(HOST, node.port) for node in nodes], "t")
            load = RegisterLoad(uas)

            async def scenario() -> None:
                running = asyncio.get_running_loop().create_task(load.run())
                await asyncio.sleep(seconds)
                load.stop()
                await running

            started = time.monotonic()
            asyncio.run(scenario())
            return load.tally.statuses.get(200, 0) / (time.monotonic() - started)
        finally:
            for node in nodes:
                node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="2,3")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--throughput-seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores, shared)")
    for count in (int(n) for n in args.nodes.split(",")):
        report_cluster(cluster(count, args.seconds))
    one, two = [], []
    for _ in range(args.rounds):  # alternately, so that the machine's noise hits both
        one.append(throughput(1, args.throughput_seconds))
        two.append(throughput(2, args.throughput_seconds))
    one.sort(), two.sort()
    print(f"throughput (64 phones back to back, PostgreSQL, medians of {args.rounds}): "
          f"1 node {one[len(one) // 2]:.0f} REGISTERs/s, 2 nodes {two[len(two) // 2]:.0f}/s, "
          f"ratio {two[len(two) // 2] / one[len(one) // 2]:.2f} (all of it on 2 shared cores); "
          f"rounds 1 node {[round(x) for x in one]}, 2 nodes {[round(x) for x in two]}")


if __name__ == "__main__":
    main()
