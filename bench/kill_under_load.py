"""Kills under load: `serve` SIGKILLed at random moments while REGISTERs and NOTIFYs flow.

    python3 bench/kill_under_load.py [--stores sqlite,postgresql] [--kills-sqlite 20]
                                     [--kills-postgresql 10] [--aors 60] [--seed 16]

One `serve` node per store, publishing to a loopback presence server (bench/presence_peer.py,
which records every PUBLISH) that also takes our standing SUBSCRIBE for
sip:remote@example.com. Phones on `--aors` AoRs (three Call-IDs each, about 180
REGISTERs/s: new bindings, refreshes with changing lifetimes, de-registrations, reboots
with a new Call-ID; bench/mixed_traffic.py) retransmit like RFC 3261 clients across every
restart and remember each 200; a notifier sends a full-state NOTIFY in our dialog five
times a second. `serve` is SIGKILLed after a random 1-4 s, restarted at once, as many
times as asked; then the traffic settles, serve stops, and the script checks
(bench/kill_checks.py):
- every binding whose REGISTER got a 2xx is in the store and in the view with the
  acknowledged Call-ID, CSeq and expiry, unless a later request changed it; after an
  acknowledged de-registration it is gone;
- no REGISTER or NOTIFY was applied twice (the same cause recorded twice on a binding);
- the remote AoR holds what the last acknowledged NOTIFY said;
- the PUBLISHes: per resource, versions without a gap, none sent more than twice (a
  re-send of a document whose 2xx was not recorded), the last one matching the view;
- one SUBSCRIBE dialog (one Call-ID) for the standing subscription.
Printed: each figure, and OK or the problems. Every process started here is stopped by
its PID; databases are created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.kill_checks import (  # noqa: E402
    applied_twice, dialogs, notify_problems, publication_problems, store_rows,
)
from bench.mixed_traffic import NotifyStream, chooser, phones  # noqa: E402
from bench.presence_peer import PresencePeer  # noqa: E402
from bench.register_load import HOST, RegisterLoad, check_acknowledged  # noqa: E402
from bench.serve_node import Node, view_rows  # noqa: E402
from bench.sipp_runs import free_port  # noqa: E402
from bench.stores import empty_store  # noqa: E402
from infrastructure.bootstrap import open_service  # noqa: E402
from infrastructure.settings import load_settings  # noqa: E402

REMOTE = "sip:remote@example.com"
SETTLE = 6.0  # seconds of traffic after the last restart: retransmissions land
PHONES_PER_AOR = 3


def node_settings(peer_port: int, port: int) -> str:
    return (f'[reginfo]\ndefault_domain = "example.com"\npublish_reginfo = true\n'
            f'outbound_proxy = "sip:{HOST}:{peer_port}"\n'
            f'server_address = "sip:reginfo@{HOST}:{port}"\n'
            f'[[subscribe]]\nuri = "{REMOTE}"\nexpires = 600\n')


@dataclass
class Outcome:
    kills: int
    load: RegisterLoad
    stream: NotifyStream
    problems: dict[str, list[str]]
    resent: int
    publishes: int
    dialogs: dict[str, set[str]]
    tracebacks: int
    seconds: float

    def ok(self) -> bool:
        return not any(self.problems.values())


def run(store: str, kills: int, aors: int, seed: int,
        pause_range: tuple[float, float] = (1.0, 4.0)) -> Outcome:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as folder, empty_store(store, Path(folder)) as url:
        peer = PresencePeer.start(free_port())
        port = free_port()
        node = Node(url, Path(folder), "killed", port=port,
                    settings=node_settings(peer.port, port))
        started = time.monotonic()
        try:
            node.start()
            if not peer.wait_for(lambda p: p.dialogs, 15):
                raise SystemExit(f"no SUBSCRIBE reached the peer: {node.log.read_text()[-2000:]}")
            with peer.lock:
                dialog = next(iter(peer.dialogs.values()))
            uas = phones([f"user{i}" for i in range(aors)], PHONES_PER_AOR, [(HOST, port)], "k")
            load = RegisterLoad(uas, pause=1.0, choose=chooser(rng))
            stream = NotifyStream(load, (HOST, port), dialog.call_id, dialog.local_uri)

            async def scenario() -> None:
                loop = asyncio.get_running_loop()
                registering = loop.create_task(load.run())
                await asyncio.sleep(0.5)
                notifying = loop.create_task(stream.run())
                for _ in range(kills):
                    await asyncio.sleep(rng.uniform(*pause_range))
                    node.kill()
                    await asyncio.to_thread(node.start)
                await asyncio.sleep(SETTLE)
                load.stop()
                await asyncio.gather(registering, notifying)

            asyncio.run(scenario())
            time.sleep(1.0)  # the last documents reach the peer
        finally:
            node.stop()
            peer.stop()
        rows = view_rows(url)
        local = {f"sip:{ua.aor_user}@example.com" for ua in uas}
        service = open_service(load_settings(env={}, overrides={
            "store": {"url": url}, "node": {"id": "check"}}))
        try:
            stored = store_rows(service, local)
            twice = applied_twice(service)
        finally:
            service.close()
        with peer.lock:
            received = list(peer.received)
        published, resent = publication_problems(received, rows, local)
        seen = dialogs(peer)
        problems = {
            "view": check_acknowledged(uas, rows),
            "store": check_acknowledged(uas, stored),
            "applied twice": twice,
            "notify": notify_problems(stream, rows),
            "publish": published,
            "dialogs": [f"{uri}: {len(ids)} dialogs" for uri, ids in seen.items() if len(ids) != 1]
            + ([] if seen else ["no SUBSCRIBE"]),
        }
        return Outcome(kills, load, stream, problems, resent, len(received), seen,
                       node.tracebacks(), time.monotonic() - started)


def report(store: str, outcome: Outcome) -> None:
    tally = outcome.load.tally
    acked = sum(1 for ua in outcome.load.uas if ua.ack is not None)
    print(f"{store}: {outcome.kills} SIGKILLs in {outcome.seconds:.0f} s; REGISTER "
          f"transactions {tally.sent}, answers {dict(sorted(tally.statuses.items()))}, "
          f"timeouts {tally.timeouts}, retransmissions {tally.retransmissions}; phones with an "
          f"acknowledged REGISTER {acked}/{len(outcome.load.uas)}; NOTIFY answers "
          f"{dict(sorted(outcome.stream.statuses.items()))} (last version acknowledged "
          f"{outcome.stream.acked[0] if outcome.stream.acked else None}); PUBLISHes "
          f"{outcome.publishes}, documents re-sent {outcome.resent}; SUBSCRIBE dialogs "
          f"{ {uri: len(ids) for uri, ids in outcome.dialogs.items()} }; tracebacks "
          f"{outcome.tracebacks}")
    for name, found in outcome.problems.items():
        print(f"  {name}: {'OK' if not found else f'{len(found)} problem(s)'}")
        for problem in found[:8]:
            print(f"    {problem}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--kills-sqlite", type=int, default=20)
    parser.add_argument("--kills-postgresql", type=int, default=10)
    parser.add_argument("--aors", type=int, default=60)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores, shared)")
    for store in args.stores.split(","):
        kills = args.kills_sqlite if store == "sqlite" else args.kills_postgresql
        report(store, run(store, kills, args.aors, args.seed))


if __name__ == "__main__":
    main()
