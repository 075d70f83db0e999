"""`serve` under sipp: the highest call rate each scenario sustains with no failure.

    python3 bench/serve_sipp.py [--quick] [--stores sqlite,postgresql]
                                [--scenarios register,notify-1c,notify-5c]
                                [--rates 100,200,400] [--seconds 10]

Scenarios (bench/sipp/): `register` (a new AoR per call, one Contact, Expires 3600, 200),
`notify-1c` and `notify-5c` (a reginfo NOTIFY, Event: reg, full state version 0 in a dialog
of its own, with 1 or 5 contacts of a new AoR, 200; serve runs with [notify] mode = "rfc"
and accept_unsolicited_notify = true). Every call is one request and its final response.

For each store (a temporary SQLite file; a PostgreSQL database `pua_reginfo_bench_<hex>`
created on 127.0.0.1:5432 and dropped afterwards) and scenario, the rates of the ladder are
run in order, each on a fresh store and a freshly started `serve --log-level WARNING`
(stopped by its PID), with sipp over UDP for `--seconds` worth of calls (at least 1,000,
at most 20,000). A run passes when sipp exits 0, every call succeeded, sipp counted no
failed call and no retransmission (it retransmits after 500 ms, T1, so one slow answer
fails the run), and sipp offered 95% of the target rate (sipp shares the 2 cores: below
that the target was not really offered; offered = calls over the run less one average
response time, the wait for the last answers). The first failing rate ends the series. sipp
gives up a call after 2 retransmissions (-max_non_invite_retrans 2) to keep failing runs
short. --quick: rates 100, 200, 400, 600, 800, 1200 and 3 s runs (at least 300 calls,
at most 5,000).

Printed: one line per run (stderr), then the table (stdout): store, scenario, highest
passing rate, its average response time and serve's CPU (% of one core), and the first
failing rate with why. UDP drops are the growth of RcvbufErrors in /proc/net/snmp over the
run (system-wide). All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sipp_runs import (HOST, MIN_RATE_SHARE, SippStats, cpu_seconds, free_port,  # noqa: E402
                             run_to_end, running_serve, sipp_command, tree, udp_rcvbuf_errors)
from bench.stores import empty_store  # noqa: E402

SCENARIO_DIR = Path(__file__).resolve().parent / "sipp"
SCENARIOS = {"register": "register.xml", "notify-1c": "notify-1c.xml", "notify-5c": "notify-5c.xml"}
RATES = (100, 200, 400, 600, 800, 1200, 1600, 2400, 3200)
QUICK_RATES = (100, 200, 400, 600, 800, 1200)


@dataclass
class Run:
    store: str
    scenario: str
    rate: int
    calls: int
    exit_code: int
    stats: SippStats
    serve_cpu: float  # % of one core over the sipp run
    udp_drops: int
    seconds: float

    @property
    def passed(self) -> bool:
        return not self.stats.problems(self.exit_code, self.rate, self.calls)

    def why(self) -> str:
        return ", ".join(self.stats.problems(self.exit_code, self.rate, self.calls))


def serve_config(port: int) -> str:
    return (f'[listen]\nudp = ["{HOST}:{port}"]\ntcp = ["{HOST}:{port}"]\n'
            '[registrar]\ndomains = ["example.com"]\n[node]\nid = "bench"\n'
            '[notify]\nmode = "rfc"\naccept_unsolicited_notify = true\n')


def run_sipp_at(scenario: str, port: int, pid: int, rate: int, calls: int, folder: Path) -> dict:
    stats = folder / f"{scenario}-{rate}.csv"
    budget = calls / rate
    command = sipp_command(SCENARIO_DIR / SCENARIOS[scenario], port, rate, calls, stats,
                           folder / f"{scenario}-{rate}.errors.log", timeout=budget * 2 + 30)
    cpu0, drops0, started = cpu_seconds(tree(pid)), udp_rcvbuf_errors(), time.monotonic()
    exit_code = run_to_end(command, folder / f"{scenario}-{rate}.screen.log",
                           timeout=budget * 2 + 60)
    seconds = time.monotonic() - started
    cpu = (cpu_seconds(tree(pid)) - cpu0) / seconds * 100
    return dict(exit_code=exit_code, stats=SippStats.read(stats), serve_cpu=cpu,
                udp_drops=udp_rcvbuf_errors() - drops0, seconds=seconds)


def series(store: str, scenario: str, rates: list[int], seconds: float, min_calls: int,
           max_calls: int) -> list[Run]:
    runs: list[Run] = []
    for rate in rates:
        calls = int(min(max(rate * seconds, min_calls), max_calls))
        with tempfile.TemporaryDirectory(prefix="pua-reginfo-bench-") as temp:
            folder = Path(temp)
            port = free_port()
            with empty_store(store, folder) as url, \
                    running_serve(url, folder, serve_config(port), port) as process:
                result = run_sipp_at(scenario, port, process.pid, rate, calls, folder)
        run = Run(store, scenario, rate, calls, **result)
        runs.append(run)
        print(f"  {store:<10} {scenario:<10} {rate:>5}/s {calls:>6} calls: "
              f"{'PASS' if run.passed else 'FAIL'} ok {run.stats.succeeded} "
              f"failed {run.stats.failed} retrans {run.stats.retransmissions} "
              f"out-of-call {run.stats.out_of_call} offered {run.stats.offered:.0f}/s "
              f"rtt {run.stats.response_ms:.1f} ms serve CPU {run.serve_cpu:.0f}% "
              f"udp drops {run.udp_drops} ({run.seconds:.1f} s)", file=sys.stderr, flush=True)
        if not run.passed:
            break
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="rates 100..1200; 3 s runs")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--rates", help="comma-separated calls/s, climbed in order")
    parser.add_argument("--seconds", type=float, help="run length at each rate (default 10, quick 3)")
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        raise SystemExit("sipp is needed (Debian package sip-tester)")
    scenarios = [name for name in args.scenarios.split(",") if name]
    unknown = [name for name in scenarios if name not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown} (known: {', '.join(SCENARIOS)})")
    rates = ([int(r) for r in args.rates.split(",")] if args.rates
             else list(QUICK_RATES if args.quick else RATES))
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    min_calls, max_calls = (300, 5_000) if args.quick else (1_000, 20_000)
    print(f"sipp over UDP on {HOST}, {os.cpu_count()} CPUs, rates {rates}, {seconds:g} s per rate "
          f"(calls {min_calls}..{max_calls}); pass = all calls ok, no failed call, no "
          f"retransmission, >= {MIN_RATE_SHARE:.0%} of the rate offered", file=sys.stderr, flush=True)
    started = time.monotonic()
    table = []
    for store in args.stores.split(","):
        for scenario in scenarios:
            runs = series(store, scenario, rates, seconds, min_calls, max_calls)
            best = max((run for run in runs if run.passed), key=lambda run: run.rate, default=None)
            failing = next((run for run in runs if not run.passed), None)
            table.append((store, scenario, best, failing))
    print(f"{'store':<11} {'scenario':<10} {'highest passing':>15} {'rtt ms':>7} {'serve CPU':>9}  "
          f"{'first failing':<13} why  ({time.monotonic() - started:.0f} s)")
    for store, scenario, best, failing in table:
        top = f"{best.rate}/s" if best else "none"
        rtt = f"{best.stats.response_ms:.1f}" if best else "-"
        cpu = f"{best.serve_cpu:.0f}%" if best else "-"
        fail = f"{failing.rate}/s" if failing else f"> {rates[-1]}/s"
        why = failing.why() if failing else "every rate passed"
        print(f"{store:<11} {scenario:<10} {top:>15} {rtt:>7} {cpu:>9}  {fail:<13} {why}")


if __name__ == "__main__":
    main()
