"""REGISTER -> PUBLISH through a real `serve`: throughput and lag, publishing off vs on.

    python3 bench/publish_pipeline.py [--registers 2000] [--window 16 | --rate 500] [--repeat 3]
                                      [--stores sqlite,postgresql] [--transports udp,tcp]
                                      [--udp-workers 0]

A Python client keeps `--window` REGISTERs in flight over UDP (each a new AoR, one
Contact, Expires 3600) until `--registers` were answered 200; with `--rate`, it sends them
at that steady rate instead (open loop, as phones do), which is how the lag is judged. A Python presence server on
loopback answers every PUBLISH 200 at once with a fresh SIP-ETag, over UDP or, with
`;transport=tcp` in outbound_proxy, on the TCP connection serve opens to it. For each
store, serve runs per repetition on a fresh store: publishing off (no outbound_proxy),
then on once per transport. Printed per store and transport: REGISTERs/s off and on
(medians), their ratio, PUBLISHes received,
and the lag from a REGISTER's 200 OK to its AoR's PUBLISH arriving (median, p95 and p99 of
the median run). Every REGISTER must be answered 200 and every AoR published exactly once,
else the run is reported failed. `--udp-workers N`: serve's [listen] udp_workers (the
REGISTERs are then taken by the workers, the PUBLISHes still leave from serve). All traffic
stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sipp_runs import tree  # noqa: E402
from bench.stores import empty_store  # noqa: E402

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class PresenceServer(threading.Thread):
    """Answers PUBLISH 200 with a SIP-ETag over UDP or TCP; remembers when each resource
    was first published."""

    def __init__(self, transport: str = "udp") -> None:
        super().__init__(daemon=True)
        self.transport = transport
        kind = socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.2)
        if transport == "tcp":
            self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.arrivals: dict[str, float] = {}
        self.count = 0
        self.etag = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                if self.transport == "tcp":
                    connection, _ = self.sock.accept()
                    threading.Thread(target=self._stream, args=(connection,), daemon=True).start()
                    continue
                data, address = self.sock.recvfrom(65535)
            except OSError:
                continue
            answer = self._answer(data)
            if answer:
                self.sock.sendto(answer, address)

    def _stream(self, connection: socket.socket) -> None:
        """One TCP connection: messages framed by Content-Length, answered on it."""
        connection.settimeout(0.2)
        buffer = b""
        with connection:
            while not self.stopped.is_set():
                try:
                    data = connection.recv(65536)
                except OSError:
                    continue
                if not data:
                    return
                buffer += data
                while b"\r\n\r\n" in buffer:
                    head, rest = buffer.split(b"\r\n\r\n", 1)
                    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), 0)
                    if len(rest) < length:
                        break
                    buffer = rest[length:]
                    answer = self._answer(head + b"\r\n\r\n")
                    if answer:
                        connection.sendall(answer)

    def _answer(self, data: bytes) -> bytes | None:
        now = time.monotonic()
        head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")
        if not head[0].startswith("PUBLISH "):
            return None
        self.count += 1
        self.arrivals.setdefault(head[0].split()[1], now)
        self.etag += 1
        keep = [line for line in head[1:] if line.split(":", 1)[0].lower()
                in ("via", "from", "to", "call-id", "cseq", "expires")]
        return "\r\n".join(["SIP/2.0 200 OK", *keep, f"SIP-ETag: e{self.etag}",
                             "Content-Length: 0", "", ""]).encode()

    def stop(self) -> None:
        self.stopped.set()
        self.join(5)
        self.sock.close()


def running_serve(store_url: str, folder: Path, proxy_port: int | None, transport: str = "udp",
                  workers: int = 0):
    tcp = ";transport=tcp" if transport == "tcp" else ""
    reginfo = ('[reginfo]\ndefault_domain = "example.com"\npublish_reginfo = true\n'
               + (f'outbound_proxy = "sip:{HOST}:{proxy_port}{tcp}"\n' if proxy_port else ""))
    return running_serve_with(store_url, folder, reginfo, tcp=transport == "tcp",
                              workers=workers)


@contextmanager
def running_serve_with(store_url: str, folder: Path, settings: str, tcp: bool = False,
                       workers: int = 0):
    """serve on a free loopback port with `settings` (TOML) added; yields the port."""
    port = free_port()
    config = folder / f"serve-{port}.toml"
    listen_tcp = f'"{HOST}:{port}"' if tcp else ""
    config.write_text(settings + f'[listen]\nudp = ["{HOST}:{port}"]\ntcp = [{listen_tcp}]\n'
                      f'udp_workers = {workers}\n'
                      '[registrar]\ndomains = ["example.com"]\n[node]\nid = "bench"\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "infrastructure.cli", "serve", "--store", store_url,
         "--config", str(config), "--log-level", "WARNING"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not _answers(port):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("serve did not start")
            time.sleep(0.1)
        while len(tree(process.pid)) < 1 + workers:  # serve answers before its workers do
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("serve's udp workers did not start")
            time.sleep(0.05)
        time.sleep(0.5 if workers else 0)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(0.3)
        branch = "z9hG4bKprobe" + uuid.uuid4().hex[:8]
        probe = (f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:"
                 f"{sock.getsockname()[1]};branch={branch};rport\r\nMax-Forwards: 70\r\n"
                 f"From: <sip:probe@{HOST}>;tag=p\r\nTo: <sip:{HOST}:{port}>\r\n"
                 f"Call-ID: {branch}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
        sock.sendto(probe.encode(), (HOST, port))
        try:
            return sock.recv(65535).startswith(b"SIP/2.0 ")
        except OSError:
            return False


def _register(user: str, local_port: int, branch: str) -> bytes:
    return (f"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:{local_port};"
            f"branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@example.com>;tag=b\r\n"
            f"To: <sip:{user}@example.com>\r\nCall-ID: {branch}\r\nCSeq: 1 REGISTER\r\n"
            f"Contact: <sip:{user}@{HOST}:5999>;expires=3600\r\nContent-Length: 0\r\n\r\n").encode()


def drive(port: int, registers: int, window: int,
          rate: float | None = None) -> tuple[float, dict[str, float], int]:
    """Send `registers` REGISTERs with `window` in flight, or at `rate` per second;
    (seconds, 200 times, failures)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((HOST, 0))
    sock.settimeout(5)
    local = sock.getsockname()[1]
    run = uuid.uuid4().hex[:6]
    sent, answered, failures = 0, {}, 0
    start = time.monotonic()

    def send_next() -> None:
        nonlocal sent
        user = f"b{run}x{sent}"
        sock.sendto(_register(user, local, f"z9hG4bK{run}x{sent}"), (HOST, port))
        sent += 1

    if rate:
        def paced() -> None:
            for n in range(registers):
                delay = start + n / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                send_next()
        sender = threading.Thread(target=paced, daemon=True)
        sender.start()
    else:
        for _ in range(min(window, registers)):
            send_next()
    while len(answered) + failures < registers:
        try:
            data = sock.recv(65535)
        except OSError:
            failures += registers - len(answered) - failures
            break
        now = time.monotonic()
        user = data.split(b"<sip:", 1)[1].split(b"@", 1)[0].decode()
        if data.startswith(b"SIP/2.0 200"):
            answered[f"sip:{user}@example.com"] = now
        else:
            failures += 1
        if not rate and sent < registers:
            send_next()
    sock.close()
    return time.monotonic() - start, answered, failures


def one_run(store: str, folder: Path, registers: int, window: int,
            publish: str | None, rate: float | None = None, workers: int = 0) -> dict:
    """One serve on a fresh store; `publish`: None (off) or the transport to publish over."""
    server = PresenceServer(publish) if publish else None
    if server:
        server.start()
    try:
        run_folder = Path(tempfile.mkdtemp(dir=folder))
        with empty_store(store, run_folder) as url, running_serve(
                url, folder, server.port if server else None, publish or "udp",
                workers) as port:
            seconds, answered, failures = drive(port, registers, window, rate)
            if server:
                deadline = time.monotonic() + 30
                while len(server.arrivals) < len(answered) and time.monotonic() < deadline:
                    time.sleep(0.05)
    finally:
        if server:
            server.stop()
    result = {"rate": registers / seconds, "failures": failures}
    if server:
        lags = [server.arrivals[aor] - at for aor, at in answered.items() if aor in server.arrivals]
        result.update(publishes=server.count, published=len(server.arrivals),
                      lag_median=statistics.median(lags) * 1000 if lags else float("nan"),
                      lag_p95=statistics.quantiles(lags, n=20)[18] * 1000 if len(lags) > 20 else float("nan"),
                      lag_p99=statistics.quantiles(lags, n=100)[98] * 1000 if len(lags) > 100 else float("nan"),
                      exact=server.count == registers and len(server.arrivals) == registers)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registers", type=int, default=2000)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--rate", type=float, help="REGISTERs per second, open loop")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--transports", default="udp,tcp")
    parser.add_argument("--udp-workers", type=int, default=0)
    args = parser.parse_args()
    transports = args.transports.split(",")
    pace = f"{args.rate:g}/s" if args.rate else f"{args.window} in flight"
    print(f"{args.registers} REGISTERs per run, {pace}, median of {args.repeat}")
    print(f"{'store':<11} {'via':<4} {'off/s':>7} {'on/s':>7} {'on/off':>7} {'PUBLISH':>8} "
          f"{'lag ms':>7} {'p95 ms':>7} {'p99 ms':>7}  exact")
    with tempfile.TemporaryDirectory(prefix="pua-bench-") as tmp:
        for store in args.stores.split(","):
            off: list[dict] = []
            on: dict[str, list[dict]] = {transport: [] for transport in transports}
            for _ in range(args.repeat):
                off.append(one_run(store, Path(tmp), args.registers, args.window, None,
                                   args.rate, args.udp_workers))
                for transport in transports:
                    on[transport].append(one_run(store, Path(tmp), args.registers,
                                                 args.window, transport, args.rate,
                                                 args.udp_workers))
            off_rate = statistics.median(r["rate"] for r in off)
            for transport, runs in on.items():
                middle = sorted(runs, key=lambda r: r["rate"])[len(runs) // 2]
                on_rate = statistics.median(r["rate"] for r in runs)
                exact = all(r["exact"] and not r["failures"] for r in runs) and not any(
                    r["failures"] for r in off)
                print(f"{store:<11} {transport:<4} {off_rate:7.0f} {on_rate:7.0f} "
                      f"{on_rate / off_rate:7.2f} {middle['publishes']:8d} "
                      f"{middle['lag_median']:7.1f} {middle['lag_p95']:7.1f} "
                      f"{middle['lag_p99']:7.1f}"
                      f"  {'yes' if exact else 'NO'}", flush=True)


if __name__ == "__main__":
    main()
