"""CPU per request on the request path, without sockets: SIP bytes in, 2xx out, committed.

    python3 bench/hot_path.py [--requests 6000] [--burst 200] [--store sqlite|postgresql]
                              [--tests register,register-publish,notify-1c,notify-5c]
                              [--profile FILE]

Builds the gateway exactly as `serve` does (bootstrap.build_gateway) on a fresh store and
feeds its SIP core the datagrams the lab's sipp scenarios send (1,000 AoRs, each REGISTER
with a new Call-ID, NOTIFYs in Kamailio mode answered 202), `--burst` at a time, as if
they had all arrived in one read of the socket; each burst is answered (group commit,
2xx after commit) and the projections follow (usrloc view; for register-publish also the
PUBLISH outbox, not sent). The first 1,000 requests (each AoR once) warm up and are not
measured: the steady state of a registrar that knows its AoRs. Printed per test: requests per second of CPU and CPU
microseconds per request (process time: both threads), the median of `--repeat` runs.
This is the number the issue's "CPU per request" targets; the full benchmark against
Kamailio over real sockets is bench/vs_kamailio.py. `--profile FILE` writes a cProfile
of the last run of the first test.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import statistics
import sys
import tempfile
import time
from concurrent.futures import Executor, Future
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stores import empty_store  # noqa: E402
from infrastructure.bootstrap import build_gateway, open_service  # noqa: E402
from infrastructure.settings import load_settings  # noqa: E402
from sip_gateway.transport import Arrival  # noqa: E402

HOST = "127.0.0.1"
AORS = 1000
LOOP = None  # asyncio's default event loop; --uvloop: uvloop's
ARRIVAL = Arrival((HOST, 5095), "udp", (HOST, 5070))


def register(n: int) -> bytes:
    user = f"b{n % AORS + 1:04d}"
    return (f"REGISTER sip:example.com SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:5095;branch=z9hG4bK-{n}-reg\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:{user}@example.com>;tag={n}-b\r\n"
            f"To: <sip:{user}@example.com>\r\nCall-ID: {n}-reg@{HOST}\r\nCSeq: 1 REGISTER\r\n"
            f"Contact: <sip:{user}@127.0.0.1:7001;transport=udp>\r\nExpires: 3600\r\n"
            f"User-Agent: sipp-lab-bench\r\nContent-Length: 0\r\n\r\n").encode()


def notify(n: int, contacts: int) -> bytes:
    user = f"b{n % AORS + 1:04d}"
    body = (f'<?xml version="1.0"?>\n<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" '
            f'version="{n}" state="full">\n<registration aor="sip:{user}@example.com" '
            f'id="r-{user}" state="active">\n')
    for c in range(1, contacts + 1):
        body += (f'<contact id="{user}-c{c}" state="active" event="registered" expires="3600" '
                 f'q="0.{9 - c}" callid="{user}-dev{c}@bench" cseq="{n}">\n'
                 f"<uri>sip:{user}@127.0.0.1:700{c};transport=udp</uri>\n</contact>\n")
    body += "</registration>\n</reginfo>\n"
    return (f"NOTIFY sip:reginfo@{HOST}:5070 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:5095;branch=z9hG4bK-{n}-ntf\r\nMax-Forwards: 70\r\n"
            f"From: <sip:{user}@example.com>;tag={n}-b\r\n"
            f"To: <sip:reginfo@{HOST}:5070>;tag=bench-sub\r\nCall-ID: {n}-ntf@{HOST}\r\n"
            f"CSeq: 1 NOTIFY\r\nContact: <sip:bench@{HOST}:5095>\r\nEvent: reg\r\n"
            f"Subscription-State: active;expires=3600\r\n"
            f"Content-Type: application/reginfo+xml\r\nContent-Length: {len(body)}\r\n\r\n"
            f"{body}").encode()


TESTS = {
    "register": (register, False),
    "register-publish": (register, True),
    "notify-1c": (lambda n: notify(n, 1), False),
    "notify-5c": (lambda n: notify(n, 5), False),
}


def settings_for(url: str, publish: bool):
    reginfo = {"default_domain": "example.com", "publish_reginfo": publish}
    if publish:
        reginfo["outbound_proxy"] = f"sip:{HOST}:5080"
    return load_settings(env={}, overrides={
        "store": {"url": url}, "node": {"id": "bench"}, "reginfo": reginfo,
        "registrar": {"domains": ["example.com"]},
        "notify": {"mode": "kamailio", "accept_unsolicited_notify": True, "reply_code": 202},
        "listen": {"udp": [f"{HOST}:5070"], "tcp": []}})


async def drive(gateway, messages: list[bytes], burst: int) -> tuple[int, float]:
    """Feed the core `burst` datagrams at a time; CPU seconds until all are answered."""
    answered: list[bytes] = []
    send = lambda data, _destination: answered.append(data)  # noqa: E731
    gateway.executor.start()
    if gateway.publisher is not None:
        await gateway._in_store(gateway.service.catch_up_publisher)
    started = None
    for start in range(0, len(messages), burst):
        if start == AORS:  # every AoR seen once: measure the steady state from here
            started = time.process_time()
        for data in messages[start:start + burst]:
            gateway.core.receive_datagram(data, ARRIVAL, send)
        await asyncio.gather(*gateway.core.tasks)
        await gateway._in_store(gateway._project_committed)
    cpu = time.process_time() - started
    await gateway.executor.stop()
    answered = answered[AORS:]
    gateway.store_thread.shutdown(wait=True)
    ok = sum(1 for data in answered if data.startswith((b"SIP/2.0 200", b"SIP/2.0 202")))
    return ok, cpu


class Inline(Executor):
    """Runs the store thread's jobs at once on the caller's thread (one thread to
    profile: cProfile sees only the thread it runs on)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:
            future.set_exception(error)
        return future


def run_once(test: str, store: str, requests: int, burst: int,
             profile: Path | None = None) -> float:
    make, publish = TESTS[test]
    messages = [make(n) for n in range(requests)]
    with tempfile.TemporaryDirectory() as folder, empty_store(store, Path(folder)) as url:
        service = open_service(settings_for(url, publish))
        try:
            gateway = build_gateway(service)
            if profile:
                gateway.executor.store_thread = Inline()
            profiler = cProfile.Profile() if profile else None
            if profiler:
                profiler.enable()
            with asyncio.Runner(loop_factory=LOOP) as runner:
                ok, cpu = runner.run(drive(gateway, messages, burst))
            if profiler:
                profiler.disable()
                profiler.dump_stats(str(profile))
        finally:
            service.close()
    measured = requests - AORS
    if ok != measured:
        raise SystemExit(f"{test}: only {ok} of {measured} requests were answered 2xx")
    return cpu / measured * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store", default="sqlite")
    parser.add_argument("--tests", default=",".join(TESTS))
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop's event loop")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        global LOOP
        LOOP = uvloop.new_event_loop
    print(f"{'test':<18} {'us CPU/request':>15} {'requests/CPU-s':>15}   ({args.store}, "
          f"{args.requests} requests in bursts of {args.burst}, median of {args.repeat})")
    for index, test in enumerate(args.tests.split(",")):
        runs = []
        for attempt in range(args.repeat):
            last = index == 0 and attempt == args.repeat - 1
            runs.append(run_once(test, args.store, args.requests, args.burst,
                                 args.profile if last else None))
        us = statistics.median(runs)
        print(f"{test:<18} {us:>15.0f} {1e6 / us:>15.0f}", flush=True)


if __name__ == "__main__":
    main()
