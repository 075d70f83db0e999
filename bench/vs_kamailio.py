"""Kamailio 5.6 against `serve` (SQLite, PostgreSQL): the highest clean rate of the Kamailio
lab's four benchmark tests, the CPU per request and the memory at that rate.

    python3 bench/vs_kamailio.py [--quick] [--tests notify-1c,notify-5c,register-publish,register]
                                 [--systems kamailio,sqlite,postgresql] [--seconds 10]
                                 [--start-kamailio 1000] [--start-ours 125] [--max-rate 32000]
                                 [--udp-workers 2] [--json FILE]

Systems, each on UDP 127.0.0.1:5070, which the lab's sipp scenarios target (the command
refuses to start while 5070 or 5080 is taken):
- kamailio: the lab's bench/kamailio/registrar.cfg, unchanged (usrloc in memory, pua_reginfo
  PUBLISHing to sip:127.0.0.1:5080), started as the lab's lib.sh does: `kamailio -DD -E -Y
  <step folder> -m 1024 -M 8 -A WITH_QUIET`, KAMLAB_CHILDREN=2 (2 UDP workers), KAMLAB_PUA_DB
  a fresh SQLite file made from Kamailio's standard-create.sql and presence-create.sql,
  KAMLAB_REG_CTL a ctl socket in the step folder;
- sqlite, postgresql: `python3 -m infrastructure.cli serve --log-level WARNING` on a fresh
  store (bench/stores.py), [notify] mode "kamailio" with unsolicited NOTIFYs accepted and
  answered 202, [registrar] domains and [reginfo] default_domain example.com, no TCP,
  [listen] udp_workers = --udp-workers (2, as Kamailio's 2 UDP workers; 0: serve alone).
  The step waits until serve's process tree holds its workers.

Tests (the lab's scenarios in bench/kamailio/, unchanged; sipp injects 1,000 AoRs b0001..
b1000 in turn, so each AoR is hit again every 1,000 calls, as the lab's bench.sh does):
- notify-1c, notify-5c: a full-state reginfo NOTIFY (Event: reg) with 1 or 5 contacts per
  call, answered 202;
- register-publish: a REGISTER per call, answered 200, whose binding change is PUBLISHed to
  the sink on 127.0.0.1:5080 (ours: [reginfo] outbound_proxy = "sip:127.0.0.1:5080");
- register: the same with publishing off (Kamailio `-A WITH_NO_PUBLISH`, ours
  publish_reginfo = false).
The PUBLISH sink is a sipp UAS (bench/kamailio/publish-sink.xml, -deadcall_wait 0 so that a
PUBLISH reusing a Call-ID counts as a new call) answering every PUBLISH 200 with a SIP-ETag;
it runs, freshly started, in every step, and its SuccessfulCall count is the number of
PUBLISHes answered.

Method. For each test, the three systems in turn (Kamailio, SQLite, PostgreSQL): a rate
search. Each step starts the system afresh (a fresh store for ours), waits 1 s, and runs one
sipp client (`-r RATE -rp 1000 -m CALLS -l 5000 -max_non_invite_retrans 2`, so a call fails
after 2 retransmissions, the first after 500 ms) with CALLS = RATE x --seconds (10; --quick 3),
at least 100 x --seconds. A step passes when every call got its expected final response,
sipp counted no failed call and no retransmission, sipp offered at least 95% of the rate
(calls over the run less one average response time: sipp shares the 2 cores) and, for
register-publish, the sink answered one PUBLISH per REGISTER (counted up to 5 s after the
run; more, such as retransmitted PUBLISHes, fails too). The search starts at --start-kamailio
(1000/s) or --start-ours (125/s), doubles the rate while steps pass and the next rate stays
within --max-rate (32000/s; --quick: 16000/s for Kamailio and 4000/s for ours), then tries
once the middle between the last passing and the first failing rate.

Measured in every step, shown for the highest passing one:
- CPU per request: user + system CPU seconds of the system's process tree (Kamailio's main
  process and its children; serve) from /proc/<pid>/stat, from the start of the sipp run to
  the end of the PUBLISH count, over the number of calls, in microseconds. For PostgreSQL
  the server backends of serve's database (pg_stat_activity) are measured apart and shown
  as "+N db" (the work a SQLite store does inside serve).
- Peak memory: every 0.5 s during the sipp run, the sum of Pss (/proc/<pid>/smaps_rollup)
  over the process tree; the maximum in MB. PSS splits each shared page among the processes
  mapping it, so Kamailio's shared memory (-m 1024, of which only touched pages count) is
  counted once, not once per worker. PostgreSQL backends are kept apart (JSON only).
- sipp's average response time (ms; resolution 1 ms at best), UDP receive-buffer drops on
  the machine (RcvbufErrors in /proc/net/snmp), both in the progress lines and the JSON.

Printed: one line per step on stderr; then on stdout a Markdown table, one row per test:
the highest passing rate of each system ("<N": the start rate failed; "N+": no rate up to
the limit failed), ours as a share of Kamailio's, CPU per request (us), peak PSS (MB).
--json FILE: every step's raw results, with the PIDs it started. The files of failing
steps (Kamailio's log or serve's, sipp's error files and statistics, the sink's) stay in a
temporary folder named at the start and the end; a summary of sipp's errors and the log's
last warnings are printed with the step.

Every process is started here (subprocess.Popen) and stopped by its PID (SIGTERM, SIGKILL
after 10 s, then any child it left) when its step ends, on errors, on Ctrl-C and on
SIGTERM. Needs kamailio (with the sqlite and presence modules) and sipp: run as root, the
command installs the missing Debian packages. All traffic stays on 127.0.0.1; nothing else
may use 5070 or 5080 meanwhile. A full run takes 20-30 minutes; the machine should be quiet.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sipp_runs import (HOST, SIPP_BUFFER, SippStats, cpu_seconds, last_stats, number,  # noqa: E402
                             options_answered, port_free, pss_kb, run_to_end, running,
                             running_serve, sipp_command, tail, tree, udp_rcvbuf_errors,
                             wait_ports_free)
from bench.stores import PG, empty_store  # noqa: E402

LAB = Path(__file__).resolve().parent / "kamailio"
KAMAILIO = Path("/usr/sbin/kamailio")
MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")
KAMAILIO_SQL = Path("/usr/share/kamailio/db_sqlite")
PACKAGES = ["kamailio", "kamailio-sqlite-modules", "kamailio-presence-modules", "sip-tester"]
PORT, SINK_PORT = 5070, 5080
PORTS = [(PORT, socket.SOCK_DGRAM), (PORT, socket.SOCK_STREAM), (SINK_PORT, socket.SOCK_DGRAM)]
AORS = 1000
SYSTEMS = ("kamailio", "sqlite", "postgresql")
TESTS = {  # test: (scenario, whether REGISTERs are PUBLISHed)
    "notify-1c": ("bench-notify-1c.xml", False),
    "notify-5c": ("bench-notify-5c.xml", False),
    "register-publish": ("bench-register.xml", True),
    "register": ("bench-register.xml", False),
}
PUBLISH_WAIT = 5.0  # seconds after the run for the last PUBLISHes to be answered


@dataclass
class Step:
    test: str
    system: str
    rate: int
    calls: int
    exit_code: int = -1
    stats: SippStats | None = None
    published: int = 0  # PUBLISHes the sink answered
    cpu_seconds: float = 0.0
    db_cpu_seconds: float = 0.0  # PostgreSQL backends of serve's database
    peak_pss_mb: float = 0.0
    db_peak_pss_mb: float = 0.0
    udp_drops: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    folder: str = ""
    pids: dict[str, int] = field(default_factory=dict)  # what this step started

    @property
    def passed(self) -> bool:
        return not self.problems

    def cpu_us(self, db: bool = False) -> float:
        return (self.db_cpu_seconds if db else self.cpu_seconds) / self.calls * 1e6

    def line(self) -> str:
        head = f"{self.test:<16} {self.system:<10} {self.rate:>6}/s {self.calls:>6} calls: "
        if self.stats is None:
            return head + "FAIL " + "; ".join(self.problems)
        stats = self.stats
        db = f" (+{self.cpu_us(db=True):.0f} db)" if self.system == "postgresql" else ""
        return (head + f"{'PASS' if self.passed else 'FAIL'} ok {stats.succeeded} failed "
                f"{stats.failed} retrans {stats.retransmissions} offered {stats.offered:.0f}/s "
                f"rtt {stats.response_ms:.1f} ms published {self.published} "
                f"cpu {self.cpu_us():.0f} us/req{db} pss {self.peak_pss_mb:.0f} MB "
                f"drops {self.udp_drops} ({self.seconds:.1f} s)"
                + ("" if self.passed else f" -- {', '.join(self.problems)}"))


class PeakPss(threading.Thread):
    """The highest summed Pss (kB) of `pids()`, sampled every 0.5 s until stopped."""

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        super().__init__(daemon=True)
        self.pids, self.peak, self.done = pids, 0, threading.Event()

    def run(self) -> None:
        while True:
            self.peak = max(self.peak, pss_kb(self.pids()))
            if self.done.wait(0.5):
                return

    def stop(self) -> float:
        """Stop sampling; the peak in MB."""
        self.done.set()
        self.join()
        return self.peak / 1024


# --- the systems and the sink ---------------------------------------------------------------

def wait_answering(process: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + 30
    while not options_answered(PORT):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start; its log ({log}):\n{tail(log, 30)}")
        time.sleep(0.1)


@contextmanager
def running_kamailio(folder: Path, publish: bool) -> Iterator[subprocess.Popen]:
    """The lab's registrar, as lib.sh starts it, once it answers OPTIONS on 5070."""
    database = folder / "pua.db"
    with closing(sqlite3.connect(database)) as db:
        db.executescript((KAMAILIO_SQL / "standard-create.sql").read_text()
                         + (KAMAILIO_SQL / "presence-create.sql").read_text())
    env = dict(os.environ, KAMLAB_PUA_DB=f"sqlite://{database}",
               KAMLAB_REG_CTL=f"unix:{folder / 'registrar.ctl'}", KAMLAB_CHILDREN="2")
    command = [str(KAMAILIO), "-f", str(LAB / "registrar.cfg"), "-DD", "-E", "-Y", str(folder),
               "-m", "1024", "-M", "8", "-A", "WITH_QUIET"]
    if not publish:
        command += ["-A", "WITH_NO_PUBLISH"]
    log = folder / "kamailio.log"
    with running(command, log, env=env) as process:
        wait_answering(process, log, "kamailio")
        yield process


def serve_config(publish: bool, workers: int = 0) -> str:
    reginfo = (f'publish_reginfo = true\noutbound_proxy = "sip:{HOST}:{SINK_PORT}"\n'
               if publish else 'publish_reginfo = false\n')
    return (f'[listen]\nudp = ["{HOST}:{PORT}"]\ntcp = []\nudp_workers = {workers}\n'
            '[registrar]\ndomains = ["example.com"]\n'
            f'[reginfo]\ndefault_domain = "example.com"\n{reginfo}'
            '[notify]\nmode = "kamailio"\naccept_unsolicited_notify = true\nreply_code = 202\n'
            '[node]\nid = "bench"\n')


@contextmanager
def publish_sink(folder: Path) -> Iterator[subprocess.Popen]:
    """The sipp PUBLISH sink on 5080, once bound; its -trace_stat CSV is folder/sink.csv."""
    command = ["sipp", "-sf", str(LAB / "publish-sink.xml"), "-i", HOST, "-p", str(SINK_PORT),
               "-t", "u1", "-buff_size", str(SIPP_BUFFER), "-deadcall_wait", "0", "-nostdin",
               "-trace_stat", "-stf", str(folder / "sink.csv"),
               "-fd", "1", "-trace_err", "-error_file", str(folder / "sink.errors.log")]
    log = folder / "sink.screen.log"
    with running(command, log) as process:
        deadline = time.monotonic() + 10
        while port_free(SINK_PORT):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the PUBLISH sink did not start ({log}):\n{tail(log)}")
            time.sleep(0.05)
        yield process


def published(stats: Path, expected: int) -> int:
    """PUBLISHes the sink answered, waiting up to PUBLISH_WAIT s for `expected` of them
    (its CSV is rewritten every second)."""
    deadline = time.monotonic() + (PUBLISH_WAIT if expected else 1.1)
    while True:
        count = int(number(last_stats(stats), "SuccessfulCall(C)"))
        if (expected and count >= expected) or time.monotonic() > deadline:
            return count
        time.sleep(0.25)


def db_backends(store_url: str) -> list[int]:
    """PIDs of the PostgreSQL backends connected to the store's database."""
    with psycopg.connect(**PG, autocommit=True) as admin:
        rows = admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                             (store_url.rsplit("/", 1)[1],)).fetchall()
    return [pid for (pid,) in rows]


def wait_for_children(process: subprocess.Popen, count: int, timeout: float = 20.0) -> None:
    """Until serve's process tree holds `count` processes beside serve (its UDP workers)."""
    deadline = time.monotonic() + timeout
    while len(tree(process.pid)) < 1 + count:
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"serve's {count} udp workers did not start")
        time.sleep(0.05)


# --- one step, one search ------------------------------------------------------------------

def measure(step: Step, folder: Path, users: Path, workers: int = 0) -> None:
    scenario, publish = TESTS[step.test]
    wait_ports_free(PORTS)
    with ExitStack() as stack:
        step.pids["sink"] = stack.enter_context(publish_sink(folder)).pid
        store_url = None
        if step.system == "kamailio":
            process = stack.enter_context(running_kamailio(folder, publish))
        else:
            store_url = stack.enter_context(empty_store(step.system, folder))
            process = stack.enter_context(
                running_serve(store_url, folder, serve_config(publish, workers), PORT))
            wait_for_children(process, workers)
        step.pids[step.system] = process.pid
        time.sleep(1)
        backends = db_backends(store_url) if step.system == "postgresql" else []
        system = PeakPss(lambda: tree(process.pid))
        db = PeakPss(lambda: backends)
        db_cpu0 = {pid: cpu_seconds([pid]) for pid in backends}
        cpu0, drops0 = cpu_seconds(tree(process.pid)), udp_rcvbuf_errors()
        started = time.monotonic()
        system.start()
        db.start()
        try:
            budget = step.calls / step.rate
            command = sipp_command(LAB / scenario, PORT, step.rate, step.calls,
                                   folder / "sipp.csv", folder / "sipp.errors.log",
                                   extra=["-inf", str(users)], timeout=budget * 2 + 30)
            step.exit_code = run_to_end(command, folder / "sipp.screen.log", budget * 2 + 60,
                                        lambda sipp: step.pids.update(sipp=sipp.pid))
        finally:
            step.peak_pss_mb, step.db_peak_pss_mb = system.stop(), db.stop()
        step.published = published(folder / "sink.csv", step.calls if publish else 0)
        step.seconds = time.monotonic() - started
        step.cpu_seconds = cpu_seconds(tree(process.pid)) - cpu0
        if backends:
            step.db_cpu_seconds = sum(cpu_seconds([pid]) - db_cpu0.get(pid, 0.0)
                                      for pid in db_backends(store_url))
        step.udp_drops = udp_rcvbuf_errors() - drops0
        if process.poll() is not None:
            step.problems.append(f"{step.system} exited ({process.returncode}) during the run")
    step.stats = SippStats.read(folder / "sipp.csv")
    step.problems += step.stats.problems(step.exit_code, step.rate, step.calls)
    if publish and step.published != step.calls:
        step.problems.append(f"{step.published} PUBLISHes answered for {step.calls} REGISTERs")


def run_step(test: str, system: str, rate: int, seconds: float, run_dir: Path,
             users: Path, workers: int = 0) -> Step:
    step = Step(test, system, rate, calls=int(max(rate * seconds, 100 * seconds)))
    folder = run_dir / f"{test}-{system}-{rate}"
    folder.mkdir()
    step.folder = str(folder)
    try:
        measure(step, folder, users, workers)
    except RuntimeError as error:
        step.problems.append(str(error))
    for leftover in (*folder.glob("bench.db*"), *folder.glob("pua.db*")):
        leftover.unlink()
    if step.passed:
        shutil.rmtree(folder)
        step.folder = ""
    print(step.line(), file=sys.stderr, flush=True)
    if not step.passed and step.stats is not None:
        for name in ("sipp.errors.log", "sink.errors.log"):
            if events := sipp_events(folder / name):
                print(f"    {name}: {events}", file=sys.stderr)
        log = folder / ("kamailio.log" if system == "kamailio" else "serve.log")
        text = tail(log, 10_000).split("signal 15 received")[0]  # not Kamailio's shutdown
        if lines := [line for line in text.splitlines()
                     if system != "kamailio" or re.search(r"ERROR|WARNING|CRITICAL", line)]:
            print(f"    {log.name}:\n" + "\n".join(f"      {line[:200]}" for line in lines[-5:]),
                  file=sys.stderr)
    return step


def sipp_events(path: Path) -> str:
    """What a sipp -error_file reports, counted by kind ("" when nothing)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    kinds = Counter(re.findall(r"\d{10}\.\d{6}: (.+?)(?= for Call-ID| \S+@|[,':(]|$)", text,
                               flags=re.MULTILINE))
    return ", ".join(f"{kind.strip()} x{count}" for kind, count in kinds.most_common(4))


def search(test: str, system: str, start: int, limit: int, seconds: float, run_dir: Path,
           users: Path, workers: int = 0) -> list[Step]:
    """Double from `start` while steps pass (up to `limit`), then bisect once."""
    steps, rate = [], start
    while True:
        steps.append(run_step(test, system, rate, seconds, run_dir, users, workers))
        if not steps[-1].passed or rate * 2 > limit:
            break
        rate *= 2
    passing = [step.rate for step in steps if step.passed]
    failing = [step.rate for step in steps if not step.passed]
    if passing and failing and failing[0] - passing[-1] > 1:
        middle = (passing[-1] + failing[0]) // 2
        steps.append(run_step(test, system, middle, seconds, run_dir, users, workers))
    return steps


# --- output --------------------------------------------------------------------------------

def best(steps: list[Step]) -> Step | None:
    return max((step for step in steps if step.passed), key=lambda step: step.rate, default=None)


def table(results: dict[tuple[str, str], list[Step]], tests: list[str],
          systems: list[str]) -> str:
    names = {"kamailio": "Kamailio", "sqlite": "SQLite", "postgresql": "PostgreSQL"}
    header = ["test"]
    for system in systems:
        header.append(f"{names[system]} /s")
        if system != "kamailio" and "kamailio" in systems:
            header.append("% of Kam.")
    header += [f"CPU us/req {names[system]}" for system in systems]
    header += [f"PSS MB {names[system]}" for system in systems]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for test in tests:
        tops = {system: best(results[test, system]) for system in systems}
        rates, cpus, memory = [], [], []
        for system in systems:
            steps, top = results[test, system], tops[system]
            label = f"<{steps[0].rate}" if top is None else str(top.rate)
            if top is not None and all(step.passed for step in steps):
                label += "+"
            rates.append(label)
            if system != "kamailio" and "kamailio" in systems:
                reference = tops["kamailio"]
                rates.append(f"{100 * top.rate / reference.rate:.1f}%" if top and reference
                             else "-")
            cpu = f"{top.cpu_us():.0f}" if top else "-"
            if top and system == "postgresql":
                cpu += f" +{top.cpu_us(db=True):.0f} db"
            cpus.append(cpu)
            memory.append(f"{top.peak_pss_mb:.0f}" if top else "-")
        lines.append("| " + " | ".join([test, *rates, *cpus, *memory]) + " |")
    return "\n".join(lines)


# --- set-up --------------------------------------------------------------------------------

def ensure_tools(kamailio: bool, run_dir: Path) -> None:
    """sipp (and kamailio with its sqlite and presence modules), installed as root if missing."""
    modules = ("db_sqlite", "usrloc", "registrar", "pua", "pua_reginfo")
    missing = shutil.which("sipp") is None or kamailio and not (
        KAMAILIO.exists() and all((MODULES / f"{name}.so").exists() for name in modules))
    if not missing:
        return
    install = f"apt-get install -y {' '.join(PACKAGES)}"
    if os.geteuid() != 0:
        raise SystemExit(f"kamailio (with its sqlite and presence modules) or sipp is missing: "
                         f"run `sudo apt-get update && sudo {install}`, or run this as root")
    print(f"installing {' '.join(PACKAGES)} with apt-get", file=sys.stderr, flush=True)
    log = run_dir / "apt-get.log"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update"], install.split()):
        if run_to_end(command, log, timeout=1800, env=env) != 0:
            raise SystemExit(f"`{' '.join(command)}` failed:\n{tail(log, 20)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", default=",".join(TESTS), help="comma-separated subset")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset")
    parser.add_argument("--seconds", type=float, help="traffic per step (default 10, quick 3)")
    parser.add_argument("--quick", action="store_true",
                        help="3 s steps; ours up to 4000/s, Kamailio up to 16000/s")
    parser.add_argument("--start-kamailio", type=int, default=1000, help="first rate (1000/s)")
    parser.add_argument("--start-ours", type=int, default=125, help="first rate (125/s)")
    parser.add_argument("--max-rate", type=int, default=32000, help="highest rate (32000/s)")
    parser.add_argument("--udp-workers", type=int, default=2,
                        help="serve's [listen] udp_workers (2, as Kamailio's UDP workers)")
    parser.add_argument("--json", type=Path, help="write every step's results here")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop what we started, as Ctrl-C
    tests = [name for name in args.tests.split(",") if name]
    systems = [name for name in args.systems.split(",") if name]
    if unknown := [name for name in tests if name not in TESTS]:
        raise SystemExit(f"unknown test(s) {unknown} (known: {', '.join(TESTS)})")
    if unknown := [name for name in systems if name not in SYSTEMS]:
        raise SystemExit(f"unknown system(s) {unknown} (known: {', '.join(SYSTEMS)})")
    systems = [name for name in SYSTEMS if name in systems]  # always in this order
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    if busy := [f"{'TCP' if kind == socket.SOCK_STREAM else 'UDP'} {HOST}:{port}"
                for port, kind in PORTS if not port_free(port, kind)]:
        raise SystemExit(f"{' and '.join(busy)} in use: the benchmark needs 5070 (the "
                         "scenarios' target) and 5080 (the PUBLISH sink); stop what holds them")
    run_dir = Path(tempfile.mkdtemp(prefix="vs-kamailio-"))
    ensure_tools("kamailio" in systems, run_dir)
    users = run_dir / "users.csv"
    users.write_text("SEQUENTIAL\n" + "".join(f"b{n:04d};\n" for n in range(1, AORS + 1)))
    limits = {"kamailio": (args.start_kamailio, min(args.max_rate, 16000 if args.quick
                                                    else args.max_rate)),
              "ours": (args.start_ours, min(args.max_rate, 4000 if args.quick else args.max_rate))}
    print(f"{os.cpu_count()} CPUs, {seconds:g} s per step, tests {', '.join(tests)}, systems "
          f"{', '.join(systems)}; start/limit Kamailio {limits['kamailio']}, ours "
          f"{limits['ours']}; serve's udp_workers {args.udp_workers}; logs in {run_dir}", file=sys.stderr, flush=True)
    results: dict[tuple[str, str], list[Step]] = {}
    started = time.monotonic()
    try:
        for test in tests:
            for system in systems:
                start, limit = limits["kamailio" if system == "kamailio" else "ours"]
                results[test, system] = search(test, system, start, limit, seconds, run_dir,
                                               users, args.udp_workers)
    finally:
        if args.json:
            args.json.write_text(json.dumps(
                [asdict(step) | {"passed": step.passed} for steps in results.values()
                 for step in steps], indent=1) + "\n")
        users.unlink()
        kept = sorted(path.name for path in run_dir.iterdir())
        if kept:
            print(f"logs of the failing steps: {run_dir} ({', '.join(kept)})", file=sys.stderr)
        else:
            run_dir.rmdir()
    print(f"({time.monotonic() - started:.0f} s)", file=sys.stderr)
    print(table(results, tests, systems))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted; the processes started here were stopped")
