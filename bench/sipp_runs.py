"""What the sipp benchmarks share: loopback ports, the processes they start (and stop by
PID), `serve` under a given config, one sipp client run and its -trace_stat verdict.

Used by bench/serve_sipp.py and bench/vs_kamailio.py.
"""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
MIN_RATE_SHARE = 0.95  # sipp must offer this share of the target rate
STOP_WAIT = 10.0  # seconds between SIGTERM and SIGKILL
SIPP_BUFFER = 4 * 1024 * 1024  # sipp's socket buffers: answers queue while it waits for CPU


# --- ports -------------------------------------------------------------------------------

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


def port_free(port: int, kind: int = socket.SOCK_DGRAM) -> bool:
    """Whether a socket of `kind` (UDP, or TCP listening) could bind HOST:port now."""
    with socket.socket(socket.AF_INET, kind) as sock:
        if kind == socket.SOCK_STREAM:  # TIME_WAIT leftovers do not keep a listener out
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def wait_ports_free(ports: Iterable[tuple[int, int]], timeout: float = 10.0) -> None:
    """Wait until every (port, kind) is free; RuntimeError naming the busy ones otherwise."""
    deadline = time.monotonic() + timeout
    while busy := [port for port, kind in ports if not port_free(port, kind)]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{HOST} port(s) {busy} still in use after {timeout:g} s")
        time.sleep(0.1)


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


def udp_rcvbuf_errors() -> int:
    """Datagrams the machine dropped so far for a full socket receive buffer."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()
             if line.startswith("Udp:")]
    return int(lines[1][lines[0].index("RcvbufErrors")])


# --- processes ---------------------------------------------------------------------------

def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat fields after the command name (state first), None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def tree(pid: int) -> list[int]:
    """pid and its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))):
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds used so far by the live processes `pids`."""
    ticks = sum(int(fields[11]) + int(fields[12]) for pid in pids if (fields := _stat(pid)))
    return ticks / os.sysconf("SC_CLK_TCK")


def pss_kb(pids: Iterable[int]) -> int:
    """Sum of Pss (kB) of the live processes `pids` (shared pages split among sharers)."""
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in text.splitlines()
                       if line.startswith("Pss:")), 0)
    return total


def stop(process: subprocess.Popen, wait: float = STOP_WAIT) -> None:
    """SIGTERM the process, SIGKILL it after `wait` s, then SIGKILL any descendant it left
    behind (recognised by PID and start time, so a reused PID is never hit)."""
    if process.poll() is None:
        left = [(pid, fields[19]) for pid in tree(process.pid)[1:] if (fields := _stat(pid))]
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=wait)
        for pid, started in left:
            if (fields := _stat(pid)) and fields[19] == started:
                os.kill(pid, signal.SIGKILL)
    process.wait()


@contextmanager
def running(command: list[str], log: Path, **popen) -> Iterator[subprocess.Popen]:
    """`command` started with its output in `log`, stopped (by PID) on the way out."""
    with open(log, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, **popen)
    try:
        yield process
    finally:
        stop(process)


def tail(path: Path, lines: int = 10) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextmanager
def running_serve(store_url: str, folder: Path, config: str, port: int,
                  ) -> Iterator[subprocess.Popen]:
    """`serve --log-level WARNING` with `config` (TOML), once it answers OPTIONS on UDP
    HOST:port; stopped by its PID."""
    config_path, log_path = folder / "serve.toml", folder / "serve.log"
    config_path.write_text(config)
    command = [sys.executable, "-m", "infrastructure.cli", "serve", "--log-level", "WARNING",
               "--store", store_url, "--config", str(config_path)]
    with running(command, log_path, cwd=ROOT) as process:
        deadline = time.monotonic() + 30
        while not options_answered(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start:\n{tail(log_path, 30)}")
            time.sleep(0.1)
        yield process


# --- sipp --------------------------------------------------------------------------------

def sipp_command(scenario: Path, port: int, rate: int, calls: int, stats: Path, errors: Path,
                 extra: Iterable[str] = (), timeout: float | None = None) -> list[str]:
    """A sipp UAC over UDP: `calls` calls of `scenario` at `rate` calls/s toward HOST:port,
    at most 5,000 open, 2 retransmissions before a call fails, -trace_stat every second."""
    timeout = timeout if timeout is not None else calls / rate * 2 + 30
    return ["sipp", "-sf", str(scenario), *extra, "-i", HOST, "-p", str(free_port()), "-t", "u1",
            "-buff_size", str(SIPP_BUFFER),
            "-r", str(rate), "-rp", "1000", "-m", str(calls), "-l", "5000",
            "-max_non_invite_retrans", "2", "-nostdin", "-timeout", f"{int(timeout)}s",
            "-trace_stat", "-stf", str(stats), "-fd", "1",
            "-trace_err", "-error_file", str(errors), f"{HOST}:{port}"]


def run_to_end(command: list[str], log: Path, timeout: float,
               started: Callable[[subprocess.Popen], object] = lambda process: None,
               **popen) -> int:
    """Run `command` (a sipp client, say) to its end, stopped after `timeout` s (exit code
    -9 then) or on Ctrl-C; its exit code. `started` is called with the process."""
    with running(command, log, **popen) as process:
        started(process)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return -9


def last_stats(path: Path) -> dict[str, str]:
    """The last row of a sipp -trace_stat CSV, by column name ({} if none yet)."""
    try:
        rows = list(csv.reader(path.open(), delimiter=";"))
    except OSError:
        return {}
    return dict(zip(rows[0], rows[-1])) if len(rows) > 1 else {}


def number(row: dict[str, str], name: str) -> float:
    try:
        return float(row.get(name, "0") or 0)
    except ValueError:
        return 0.0


@dataclass
class SippStats:
    succeeded: int
    failed: int
    retransmissions: int
    out_of_call: int
    offered: float  # calls/s sipp really sent
    response_ms: float  # average response time

    @classmethod
    def read(cls, path: Path) -> SippStats:
        last = last_stats(path)
        response = last.get("ResponseTime1(C)", "0:0:0:0").split(":")
        response_ms = ((int(response[0]) * 3600 + int(response[1]) * 60 + int(response[2])) * 1000
                       + int(response[3]) / 1000) if len(response) == 4 else 0.0
        # CallRate(C) is calls over the whole run, including the wait for the last answers:
        # without that wait (about one response time) it is the rate sipp offered.
        created, call_rate = number(last, "OutgoingCall(C)"), number(last, "CallRate(C)")
        offered = (created / max(created / call_rate - response_ms / 1000, 1e-3)
                   if call_rate else 0.0)
        return cls(succeeded=int(number(last, "SuccessfulCall(C)")),
                   failed=int(number(last, "FailedCall(C)")),
                   retransmissions=int(number(last, "Retransmissions(C)")),
                   out_of_call=int(number(last, "OutOfCallMsgs(C)")),
                   offered=offered, response_ms=response_ms)

    def problems(self, exit_code: int, rate: int, calls: int) -> list[str]:
        """Why the run fails (empty: it passed): every call answered as expected, no failed
        call, no retransmission, >= MIN_RATE_SHARE of the rate offered, sipp exit 0."""
        reasons = []
        if self.failed or self.succeeded != calls:
            reasons.append(f"{self.failed} failed, {self.succeeded}/{calls} ok")
        if self.retransmissions:
            reasons.append(f"{self.retransmissions} retrans")
        if self.offered < MIN_RATE_SHARE * rate:
            reasons.append(f"sipp offered {self.offered:.0f}/s")
        if exit_code != 0 and (exit_code != 1 or not reasons):
            reasons.append(f"sipp exit {exit_code}")
        return reasons
