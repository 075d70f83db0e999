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
import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stores import empty_store  # noqa: E402

SCENARIO_DIR = Path(__file__).resolve().parent / "sipp"
SCENARIOS = {"register": "register.xml", "notify-1c": "notify-1c.xml", "notify-5c": "notify-5c.xml"}
RATES = (100, 200, 400, 600, 800, 1200, 1600, 2400, 3200)
QUICK_RATES = (100, 200, 400, 600, 800, 1200)
HOST = "127.0.0.1"
MIN_RATE_SHARE = 0.95


@dataclass
class Run:
    store: str
    scenario: str
    rate: int
    calls: int
    exit_code: int
    succeeded: int
    failed: int
    retransmissions: int
    out_of_call: int
    offered: float
    response_ms: float
    serve_cpu: float  # % of one core over the sipp run
    udp_drops: int
    seconds: float

    @property
    def passed(self) -> bool:
        return (self.exit_code == 0 and self.succeeded == self.calls and self.failed == 0
                and self.retransmissions == 0 and self.offered >= MIN_RATE_SHARE * self.rate)

    def why(self) -> str:
        reasons = []
        if self.failed or self.succeeded != self.calls:
            reasons.append(f"{self.failed} failed, {self.succeeded}/{self.calls} ok")
        if self.retransmissions:
            reasons.append(f"{self.retransmissions} retrans")
        if self.offered < MIN_RATE_SHARE * self.rate:
            reasons.append(f"sipp offered {self.offered:.0f}/s")
        if self.exit_code not in (0, 1) or not reasons:
            reasons.append(f"sipp exit {self.exit_code}")
        return ", ".join(reasons)


def free_port() -> int:
    """A port free for both UDP and TCP on loopback."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((HOST, 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((HOST, port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port")


def options_answered(port: int) -> bool:
    branch = uuid.uuid4().hex
    message = (f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {HOST}:9;branch=z9hG4bK{branch};rport\r\n"
               f"Max-Forwards: 70\r\nFrom: <sip:bench@{HOST}>;tag=b\r\nTo: <sip:{HOST}:{port}>\r\n"
               f"Call-ID: {branch}@bench\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        sock.sendto(message, (HOST, port))
        try:
            return sock.recv(65535).startswith(b"SIP/2.0 200")
        except OSError:
            return False


@contextmanager
def running_serve(store_url: str, folder: Path):
    """`serve` on a free loopback port; yields (port, pid); stopped by its PID."""
    port = free_port()
    config = folder / "serve.toml"
    config.write_text(f'[listen]\nudp = ["{HOST}:{port}"]\ntcp = ["{HOST}:{port}"]\n'
                      '[registrar]\ndomains = ["example.com"]\n[node]\nid = "bench"\n'
                      '[notify]\nmode = "rfc"\naccept_unsolicited_notify = true\n')
    log_path = folder / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "infrastructure.cli", "serve", "--log-level", "WARNING",
             "--store", store_url, "--config", str(config)],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while not options_answered(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        yield port, process.pid
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def udp_rcvbuf_errors() -> int:
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()
             if line.startswith("Udp:")]
    return int(lines[1][lines[0].index("RcvbufErrors")])


def run_sipp(scenario: str, port: int, pid: int, rate: int, calls: int, folder: Path) -> dict:
    stats = folder / f"{scenario}-{rate}.csv"
    budget = calls / rate
    command = ["sipp", "-sf", str(SCENARIO_DIR / SCENARIOS[scenario]), "-i", HOST,
               "-p", str(free_port()), "-t", "u1", "-r", str(rate), "-rp", "1000", "-m", str(calls),
               "-l", "5000", "-max_non_invite_retrans", "2", "-nostdin",
               "-timeout", f"{int(budget * 2 + 30)}s", "-trace_stat", "-stf", str(stats), "-fd", "1",
               "-trace_err", "-error_file", str(folder / f"{scenario}-{rate}.errors.log"),
               f"{HOST}:{port}"]
    cpu0, drops0, started = cpu_seconds(pid), udp_rcvbuf_errors(), time.monotonic()
    try:
        exit_code = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   timeout=budget * 2 + 60).returncode
    except subprocess.TimeoutExpired:  # subprocess.run killed it
        exit_code = -9
    seconds = time.monotonic() - started
    cpu = (cpu_seconds(pid) - cpu0) / seconds * 100
    drops = udp_rcvbuf_errors() - drops0
    rows = list(csv.reader(stats.open(), delimiter=";")) if stats.exists() else []
    last = dict(zip(rows[0], rows[-1])) if len(rows) > 1 else {}

    def number(name: str) -> float:
        try:
            return float(last.get(name, "0") or 0)
        except ValueError:
            return 0.0

    response = last.get("ResponseTime1(C)", "0:0:0:0").split(":")
    response_ms = ((int(response[0]) * 3600 + int(response[1]) * 60 + int(response[2])) * 1000
                   + int(response[3]) / 1000) if len(response) == 4 else 0.0
    # CallRate(C) is calls over the whole run, including the wait for the last answers:
    # without that wait (about one response time) it is the rate sipp offered.
    created, call_rate = number("OutgoingCall(C)"), number("CallRate(C)")
    offered = (created / max(created / call_rate - response_ms / 1000, 1e-3)) if call_rate else 0.0
    return dict(exit_code=exit_code, succeeded=int(number("SuccessfulCall(C)")),
                failed=int(number("FailedCall(C)")), retransmissions=int(number("Retransmissions(C)")),
                out_of_call=int(number("OutOfCallMsgs(C)")), offered=offered,
                response_ms=response_ms, serve_cpu=cpu, udp_drops=drops, seconds=seconds)


def series(store: str, scenario: str, rates: list[int], seconds: float, min_calls: int,
           max_calls: int) -> list[Run]:
    runs: list[Run] = []
    for rate in rates:
        calls = int(min(max(rate * seconds, min_calls), max_calls))
        with tempfile.TemporaryDirectory(prefix="pua-reginfo-bench-") as temp:
            folder = Path(temp)
            with empty_store(store, folder) as url, running_serve(url, folder) as (port, pid):
                result = run_sipp(scenario, port, pid, rate, calls, folder)
        run = Run(store, scenario, rate, calls, **result)
        runs.append(run)
        print(f"  {store:<10} {scenario:<10} {rate:>5}/s {calls:>6} calls: "
              f"{'PASS' if run.passed else 'FAIL'} ok {run.succeeded} failed {run.failed} "
              f"retrans {run.retransmissions} out-of-call {run.out_of_call} offered "
              f"{run.offered:.0f}/s rtt {run.response_ms:.1f} ms serve CPU {run.serve_cpu:.0f}% "
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
        rtt = f"{best.response_ms:.1f}" if best else "-"
        cpu = f"{best.serve_cpu:.0f}%" if best else "-"
        fail = f"{failing.rate}/s" if failing else f"> {rates[-1]}/s"
        why = failing.why() if failing else "every rate passed"
        print(f"{store:<11} {scenario:<10} {top:>15} {rtt:>7} {cpu:>9}  {fail:<13} {why}")


if __name__ == "__main__":
    main()
