"""Ledger throughput: REGISTER-style commands per second and rebuild events per second.

    python3 bench/ledger.py [--aors 500] [--commands 3000] [--rounds 3] [--stores sqlite,postgresql]

Each round starts from an empty store (a temporary SQLite file, or a PostgreSQL database
created on 127.0.0.1:5432 and dropped afterwards). Commands are the application's
`register` (load AoR, decide, one save per command, no group commit yet): first
registrations, refreshes with a new CSeq, and every tenth command a de-registration.
Rebuild drops the usrloc view and replays the whole log into it. Medians over rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infrastructure.commands import Register
from bench.stores import empty_store  # noqa: E402
from domain import ContactUpdate, RegisterRequest  # noqa: E402
from infrastructure.bootstrap import open_service  # noqa: E402
from infrastructure.settings import load_settings  # noqa: E402

def one_round(kind: str, aors: int, commands: int) -> tuple[float, float, int]:
    with empty_store(kind) as url:
        settings = load_settings(env={}, overrides={"store": {"url": url}, "node": {"id": "bench"}})
        service = open_service(settings)
        try:
            cseq = [0] * aors
            now = time.time()
            started = time.perf_counter()
            for n in range(commands):
                i = n % aors
                cseq[i] += 1
                expires = 0 if n % 10 == 9 else 3600
                request = RegisterRequest(
                    f"call-{i}", cseq[i], (ContactUpdate(f"sip:u{i}@10.0.{i // 250}.{i % 250}", expires),),
                    received=f"udp:192.0.2.{i % 250}:5060", user_agent="bench/1.0")
                service.app.run(Register(f"sip:user{i}@example.com", request), now + n * 0.001)
            command_rate = commands / (time.perf_counter() - started)
            service.catch_up()
            events = service.app.recorder.max_notification_id()
            started = time.perf_counter()
            applied = service.rebuild()
            rebuild_rate = applied / (time.perf_counter() - started)
            assert applied == events
            return command_rate, rebuild_rate, events
        finally:
            service.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aors", type=int, default=500)
    parser.add_argument("--commands", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stores", default="sqlite,postgresql")
    args = parser.parse_args()
    print(f"{'store':<11} {'REGISTER cmds/s':>16} {'rebuild events/s':>17} {'events':>7}  (median of {args.rounds})")
    for kind in args.stores.split(","):
        results = [one_round(kind, args.aors, args.commands) for _ in range(args.rounds)]
        commands = statistics.median(r[0] for r in results)
        rebuild = statistics.median(r[1] for r in results)
        print(f"{kind:<11} {commands:>16,.0f} {rebuild:>17,.0f} {results[0][2]:>7}")


if __name__ == "__main__":
    main()
