"""The notifier through a real `serve`: NOTIFYs per second to 1,000 watchers, and the lag
from a REGISTER's 200 OK to each watcher's NOTIFY.

    python3 bench/notifier_fanout.py [--aors 100] [--watchers-per-aor 10] [--rounds 5]
                                     [--rate 50] [--seconds 10] [--repeat 3]
                                     [--stores sqlite,postgresql]

A Python watcher farm on one UDP socket SUBSCRIBEs `--aors` x `--watchers-per-aor`
times (each its own dialog; every AoR registered once before) and answers every NOTIFY
200 at once. Three phases per run, on a fresh store each:
  1. subscribe: every SUBSCRIBE sent back to back; NOTIFYs/s of the first (full-state)
     NOTIFYs, from the first SUBSCRIBE to the last of them.
  2. burst: `--rounds` REGISTER refreshes of every AoR, one after the other as fast as
     serve answers them; NOTIFYs/s delivered from the first REGISTER until the watchers
     are quiet, and how many changes were merged into fewer NOTIFYs (RFC 6665 lets a
     notifier do so; every watcher must end on the last CSeq).
  3. lag: REGISTER refreshes at `--rate` per second for `--seconds`, one AoR each in turn;
     the time from each REGISTER's 200 OK to the NOTIFY of that CSeq at each watcher of
     the AoR (median, p99).
Printed per store: the median of `--repeat` runs for each number. All on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.publish_pipeline import running_serve_with  # noqa: E402
from bench.stores import empty_store  # noqa: E402

HOST = "127.0.0.1"
_CALL_ID = re.compile(rb"\r\nCall-ID: *([^\r]+)", re.I)
_CONTACT_CSEQ = re.compile(rb'<contact [^>]*cseq="(\d+)"')
_AOR = re.compile(rb'<registration aor="sip:([^@"]+)@')


class WatcherFarm(threading.Thread):
    """Many watchers on one UDP socket: SUBSCRIBEs out, every NOTIFY answered 200."""

    def __init__(self, target: int) -> None:
        super().__init__(daemon=True)
        self.target = (HOST, target)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.dialogs: dict[str, str] = {}  # Call-ID -> the AoR's user
        self.notifies: list[tuple[float, str, int | None]] = []  # (when, user, contact cseq)
        self.last_cseq: dict[str, int] = {}  # Call-ID -> the newest contact CSeq it was told
        self._halt = threading.Event()

    def subscribe(self, user: str) -> None:
        call_id = uuid.uuid4().hex
        self.dialogs[call_id] = user
        self.sock.sendto((
            f"SUBSCRIBE sip:{user}@example.com SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{self.port};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:farm@example.com>;tag=f{call_id[:8]}\r\n"
            f"To: <sip:{user}@example.com>\r\nCall-ID: {call_id}\r\nCSeq: 1 SUBSCRIBE\r\n"
            f"Contact: <sip:farm@{HOST}:{self.port}>\r\nEvent: reg\r\nExpires: 3600\r\n"
            "Content-Length: 0\r\n\r\n").encode(), self.target)

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                data, source = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            if not data.startswith(b"NOTIFY"):
                continue
            now = time.monotonic()
            head, _, body = data.partition(b"\r\n\r\n")
            self.sock.sendto(_ok(head), source)
            call_id = _CALL_ID.search(head).group(1).decode()
            cseqs = [int(c) for c in _CONTACT_CSEQ.findall(body)]
            user = self.dialogs.get(call_id, "?")
            newest = max(cseqs) if cseqs else None
            self.notifies.append((now, user, newest))
            if newest is not None:
                self.last_cseq[call_id] = max(newest, self.last_cseq.get(call_id, 0))

    def quiet(self, count: int, idle: float = 1.0, timeout: float = 120.0) -> float:
        """Wait for at least `count` NOTIFYs and `idle` s without one; the last one's time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = len(self.notifies)
            last = self.notifies[-1][0] if seen else 0.0
            if seen >= count and time.monotonic() - last >= idle:
                return last
            time.sleep(0.05)
        raise RuntimeError(f"only {len(self.notifies)} of {count} NOTIFYs arrived")

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
        self.sock.close()


def _ok(head: bytes) -> bytes:
    kept = [line for line in head.split(b"\r\n")[1:]
            if line.split(b":")[0].strip().lower() in (b"via", b"from", b"to", b"call-id",
                                                        b"cseq")]
    return b"SIP/2.0 200 OK\r\n" + b"\r\n".join(kept) + b"\r\nContent-Length: 0\r\n\r\n"


class Phone:
    """REGISTERs one after the other, each waiting for its 200."""

    def __init__(self, target: int) -> None:
        self.target = (HOST, target)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(5)
        self.port = self.sock.getsockname()[1]
        self.cseqs: dict[str, int] = {}

    def register(self, user: str) -> tuple[int, float]:
        cseq = self.cseqs[user] = self.cseqs.get(user, 0) + 1
        self.sock.sendto((
            f"REGISTER sip:example.com SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{self.port};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:{user}@example.com>;tag=p\r\n"
            f"To: <sip:{user}@example.com>\r\nCall-ID: phone-{user}\r\nCSeq: {cseq} REGISTER\r\n"
            f"Contact: <sip:{user}@192.0.2.1:5060>;expires=3600\r\nContent-Length: 0\r\n\r\n"
        ).encode(), self.target)
        while True:
            answer = self.sock.recv(65535)
            if answer.startswith(b"SIP/2.0 200"):
                return cseq, time.monotonic()
            if not answer.startswith(b"SIP/2.0 1"):
                raise RuntimeError(answer.split(b"\r\n")[0].decode())

    def close(self) -> None:
        self.sock.close()


def one_run(store: str, folder: Path, args) -> dict:
    users = [f"w{i:04d}" for i in range(args.aors)]
    watchers = args.aors * args.watchers_per_aor
    with empty_store(store, folder) as url, running_serve_with(
            url, folder, '[reginfo]\ndefault_domain = "example.com"\npublish_reginfo = false\n'
            '[notifier]\nmax_expires = 86400\n') as port:
        phone, farm = Phone(port), WatcherFarm(port)
        farm.start()
        try:
            for user in users:
                phone.register(user)
            start = time.monotonic()
            for _ in range(args.watchers_per_aor):
                for user in users:
                    farm.subscribe(user)
            end = farm.quiet(watchers)
            initial = watchers / (end - start)

            before = len(farm.notifies)
            start = time.monotonic()
            last: dict[str, int] = {}
            for _ in range(args.rounds):
                for user in users:
                    last[user] = phone.register(user)[0]
            registers = args.rounds * args.aors / (time.monotonic() - start)
            end = farm.quiet(before + watchers)
            delivered = len(farm.notifies) - before
            burst = delivered / (end - start)
            behind = sum(1 for call_id, user in farm.dialogs.items()
                         if farm.last_cseq.get(call_id) != last[user])

            before = len(farm.notifies)
            answered: dict[tuple[str, int], float] = {}
            pace = 1.0 / args.rate
            start = time.monotonic()
            for n in range(int(args.rate * args.seconds)):
                due = start + n * pace
                time.sleep(max(0.0, due - time.monotonic()))
                user = users[n % len(users)]
                cseq, at = phone.register(user)
                answered[(user, cseq)] = at
            farm.quiet(before + len(answered) * args.watchers_per_aor)
            lags = [(at - answered[(user, cseq)]) * 1000
                    for at, user, cseq in farm.notifies[before:] if (user, cseq) in answered]
        finally:
            farm.stop()
            phone.close()
    lags.sort()
    return {"initial": initial, "burst": burst, "registers": registers,
            "merged": args.rounds * args.aors * args.watchers_per_aor - delivered,
            "behind": behind, "lag_median": statistics.median(lags),
            "lag_p99": lags[int(0.99 * (len(lags) - 1))], "lag_samples": len(lags)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--aors", type=int, default=100)
    parser.add_argument("--watchers-per-aor", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stores", default="sqlite")
    args = parser.parse_args()
    watchers = args.aors * args.watchers_per_aor
    print(f"{watchers} watchers ({args.aors} AoRs x {args.watchers_per_aor}); burst "
          f"{args.rounds} rounds; lag at {args.rate:g} REGISTER/s for {args.seconds:g} s; "
          f"median of {args.repeat} runs")
    for store in args.stores.split(","):
        runs = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as folder:
                runs.append(one_run(store, Path(folder), args))
            print(f"  {store} run: " + " ".join(f"{k}={v:.1f}" if isinstance(v, float)
                                                  else f"{k}={v}" for k, v in runs[-1].items()),
                  flush=True)

        def med(key: str) -> float:
            return statistics.median(run[key] for run in runs)
        print(f"{store}: first NOTIFYs {med('initial'):.0f}/s | burst {med('burst'):.0f} "
              f"NOTIFY/s at {med('registers'):.0f} REGISTER/s (merged {med('merged'):.0f}, "
              f"watchers behind at the end {med('behind'):.0f}) | REGISTER 200 -> NOTIFY lag "
              f"median {med('lag_median'):.1f} ms, p99 {med('lag_p99'):.1f} ms")


if __name__ == "__main__":
    main()
