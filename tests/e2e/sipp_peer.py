"""sipp as the far end of the gateway's own requests: a UAS on 127.0.0.1 whose trace we read.

The gateway PUBLISHes to a presence server and SUBSCRIBEs at a notifier; in the e2e tests
that peer is sipp running a UAS scenario of tests/e2e/sipp/ on a port of its own. sipp
answers (and sends NOTIFYs) as the scenario says; the checks are made in Python on
sipp's message trace (`-trace_msg`), which sipp writes and flushes as each message goes
in or out, so a test can wait for "the third PUBLISH has been answered" while sipp runs.

    peer = peers.start("presence-server.xml", port)      # waits until sipp has bound it
    peer.wait_for_exchanges("PUBLISH", 2, timeout=10)     # two PUBLISHes, each answered
    for request, response in peer.exchanges("PUBLISH"): ...
    peer.stop()                                           # by PID; also done at teardown

Scenarios loop until they are stopped (the tests decide when they have seen enough), so
`stop` is the normal end; `wait` is for scenarios that end by themselves (`calls=N` is
passed as `-m N`) and returns sipp's exit status (0: every call succeeded).
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from sip_gateway.sip import Headers, SipRequest, SipResponse, parse_message

SCENARIOS = Path(__file__).resolve().parent / "sipp"
HOST = "127.0.0.1"

# One trace entry: a line of 47 dashes and the time, then the direction line, an empty
# line and exactly the message's bytes (sipp adds a newline or two after them). sipp
# 3.6.1 writes "UDP message received [N] bytes :" but "UDP message sent (N bytes):".
_ENTRY = re.compile(
    rb"^-{47} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n"
    rb"(UDP|TCP|TLS|SCTP) message (received|sent) (?:\[(\d+)\] bytes :|\((\d+) bytes\):)\n\n",
    re.MULTILINE)


@dataclass(frozen=True)
class TracedMessage:
    """One SIP message sipp received or sent, as its trace shows it."""

    direction: str  # "received" or "sent" (from sipp's point of view)
    time: float  # Unix seconds, from the trace's wall-clock stamp
    transport: str
    raw: bytes
    message: SipRequest | SipResponse | None  # None when the bytes do not parse
    index: int  # position in the trace

    @property
    def is_request(self) -> bool:
        return isinstance(self.message, SipRequest)

    @property
    def method(self) -> str | None:
        """The request's method, or for a response the method of its CSeq."""
        if isinstance(self.message, SipRequest):
            return self.message.method
        cseq = self.header("CSeq")
        return cseq.split()[-1] if cseq else None

    @property
    def status(self) -> int | None:
        return self.message.status if isinstance(self.message, SipResponse) else None

    @property
    def start_line(self) -> str:
        return self.raw.split(b"\r\n", 1)[0].decode("utf-8", "replace")

    @property
    def headers(self) -> Headers:
        """Case-insensitive (compact forms too), every value of a name in wire order."""
        return self.message.headers if self.message is not None else Headers()

    @property
    def body(self) -> bytes:
        return self.message.body if self.message is not None else b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def call_id(self) -> str | None:
        return self.header("Call-ID")

    @property
    def cseq(self) -> int | None:
        value = self.header("CSeq")
        return int(value.split()[0]) if value else None

    def tag(self, name: str) -> str | None:
        """The tag parameter of To or From, None without one."""
        value = self.header(name) or ""
        match = re.search(r";\s*tag\s*=\s*([^;>\s]+)", value.rsplit(">", 1)[-1], re.IGNORECASE)
        return match[1] if match else None

    def __str__(self) -> str:
        stamp = datetime.fromtimestamp(self.time).strftime("%H:%M:%S.%f")[:-3]
        return f"--- {stamp} {self.direction}:\n{self.raw.decode('utf-8', 'replace')}"


def parse_trace(data: bytes) -> list[TracedMessage]:
    """Every complete entry of a sipp -trace_msg file (a half-written last one is left out)."""
    messages: list[TracedMessage] = []
    for match in _ENTRY.finditer(data):
        stamp, transport, direction = match[1], match[2], match[3]
        size = int(match[4] or match[5])  # "received [N] bytes :", "sent (N bytes):"
        raw = data[match.end():match.end() + size]
        if len(raw) < size:
            break
        try:
            message = parse_message(raw)
        except Exception:  # a trace is evidence: keep what does not parse, as raw bytes
            message = None
        when = datetime.strptime(stamp.decode(), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        messages.append(TracedMessage(direction.decode(), when, transport.decode(), raw,
                                      message, len(messages)))
    return messages


class SippPeer:
    """One sipp UAS process: started on a port, its trace read on demand, stopped by PID."""

    def __init__(self, sipp: str, scenario: str | Path, port: int, workdir: Path, *,
                 keys: Mapping[str, str | int] | None = None, calls: int | None = None,
                 timeout: float = 300, extra: tuple[str, ...] = (), name: str | None = None,
                 transport: str = "udp"):
        self.scenario = Path(scenario) if Path(scenario).is_absolute() else SCENARIOS / scenario
        self.port = port
        self.transport = transport
        self.name = name or f"{self.scenario.stem}-{port}"
        self.workdir = workdir
        self.trace_path = workdir / f"{self.name}.messages.log"
        self.error_path = workdir / f"{self.name}.errors.log"
        self.output_path = workdir / f"{self.name}.out"
        self.command = [
            sipp, "-sf", str(self.scenario), "-i", HOST, "-p", str(port),
            "-trace_msg", "-message_file", str(self.trace_path),
            "-trace_err", "-error_file", str(self.error_path),
            "-nostdin", "-nd", "-timeout", f"{int(timeout)}s",
        ]
        if transport == "tcp":
            self.command += ["-t", "t1"]  # one TCP connection per peer, not per call
        if calls is not None:
            self.command += ["-m", str(calls)]
        for key, value in (keys or {}).items():
            self.command += ["-key", key, str(value)]
        self.command += list(extra)
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self, ready_timeout: float = 10) -> SippPeer:
        """Start sipp and return once it holds its port (or fail with its output)."""
        with open(self.output_path, "wb") as output:
            self.process = subprocess.Popen(self.command, cwd=self.workdir, stdout=output,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() == 0:
                return self  # a short client run (-m 1) may finish before we look
            if self.process.poll() is not None:
                raise AssertionError(f"sipp exited at once ({self.process.returncode})\n"
                                     f"{self.describe()}")
            if _port_taken(self.port, self.transport):
                return self
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"sipp did not bind {self.address}\n{self.describe()}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait(self, timeout: float) -> int:
        """sipp's exit status once it ends by itself (-m N); stopped and failed if it does not."""
        assert self.process is not None, "not started"
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"sipp still running after {timeout} s\n{self.describe()}")

    def stop(self) -> int | None:
        """Stop this sipp by its PID: SIGTERM, then SIGKILL. Returns the exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.process.returncode

    # --- the trace -------------------------------------------------------------------

    def messages(self) -> list[TracedMessage]:
        try:
            return parse_trace(self.trace_path.read_bytes())
        except FileNotFoundError:
            return []

    def received(self, method: str | None = None) -> list[TracedMessage]:
        """Requests sipp received, optionally of one method, in arrival order."""
        return [m for m in self.messages() if m.direction == "received" and m.is_request
                and (method is None or m.method == method)]

    def exchanges(self, method: str) -> list[tuple[TracedMessage, TracedMessage | None]]:
        """Each received `method` request with sipp's final response to it (None if none yet).

        Retransmissions (same Call-ID, CSeq and top Via branch as an earlier one) are
        folded into the first copy.
        """
        messages = self.messages()
        result: list[tuple[TracedMessage, TracedMessage | None]] = []
        seen: set[tuple] = set()
        for message in messages:
            if not (message.direction == "received" and message.is_request
                    and message.method == method):
                continue
            key = (message.call_id, message.cseq, message.header("Via"))
            if key in seen:
                continue
            seen.add(key)
            response = next((m for m in messages[message.index + 1:]
                             if m.direction == "sent" and m.status is not None
                             and m.status >= 200 and m.method == method
                             and (m.call_id, m.cseq) == (message.call_id, message.cseq)), None)
            result.append((message, response))
        return result

    def sent_requests(self, method: str | None = None) -> list[TracedMessage]:
        """Requests sipp sent (NOTIFYs), in order, retransmissions left out."""
        seen: set[tuple] = set()
        result = []
        for m in self.messages():
            if m.direction == "sent" and m.is_request and (method is None or m.method == method):
                key = (m.call_id, m.cseq, m.header("Via"))
                if key not in seen:
                    seen.add(key)
                    result.append(m)
        return result

    def sent_exchanges(self, method: str) -> list[tuple[TracedMessage, TracedMessage | None]]:
        """Each `method` request sipp sent with the final response it got (None if none yet)."""
        return [(request, self.response_to(request)) for request in self.sent_requests(method)]

    def wait_for_sent_exchanges(self, method: str, count: int, timeout: float,
                                context: Callable[[], str] | None = None):
        """Wait until sipp sent `count` `method` requests and each got a final response."""
        def answered(_):
            pairs = self.sent_exchanges(method)
            return pairs if len(pairs) >= count and all(r for _, r in pairs[:count]) else None
        return self.wait_until(answered, timeout, f"{count} answered {method}(s) sent", context)

    def response_to(self, request: TracedMessage) -> TracedMessage | None:
        """The final response sipp received to a request it sent."""
        return next((m for m in self.messages()[request.index + 1:]
                     if m.direction == "received" and m.status is not None and m.status >= 200
                     and m.method == request.method
                     and (m.call_id, m.cseq) == (request.call_id, request.cseq)), None)

    def wait_until(self, condition: Callable[[list[TracedMessage]], object], timeout: float,
                   what: str = "the condition", context: Callable[[], str] | None = None):
        """Poll the trace until condition(messages) is truthy; return its value or fail."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition(self.messages())
            if value:
                return value
            if time.monotonic() >= deadline:
                extra = f"\n{context()}" if context is not None else ""
                raise AssertionError(f"sipp peer {self.name}: no {what} within {timeout} s\n"
                                     f"{self.describe()}{extra}")
            time.sleep(0.05)

    def wait_for_exchanges(self, method: str, count: int, timeout: float,
                           context: Callable[[], str] | None = None):
        """Wait until `count` `method` requests arrived and each was answered; return them."""
        def answered(_):
            pairs = self.exchanges(method)
            return pairs if len(pairs) >= count and all(r for _, r in pairs[:count]) else None
        return self.wait_until(answered, timeout, f"{count} answered {method}(s)", context)

    def describe(self, tail: int = 40) -> str:
        """sipp's command line, output, errors and the last messages of its trace."""
        def text(path: Path, limit: int = 4000) -> str:
            try:
                return path.read_text(errors="replace")[-limit:]
            except FileNotFoundError:
                return "(none)"
        messages = "\n".join(str(m) for m in self.messages()[-tail:])
        return (f"sipp command: {' '.join(self.command)}\n"
                f"--- sipp output (tail)\n{text(self.output_path)}\n"
                f"--- sipp errors (tail)\n{text(self.error_path)}\n"
                f"--- sipp trace (last {tail})\n{messages or '(empty)'}")


class SippPeers:
    """Starts sipp peers for one test and stops every one of them (by PID) afterwards."""

    def __init__(self, sipp: str, workdir: Path):
        self.sipp = sipp
        self.workdir = workdir
        self.running: list[SippPeer] = []

    def start(self, scenario: str | Path, port: int, **options) -> SippPeer:
        peer = SippPeer(self.sipp, scenario, port, self.workdir,
                        name=f"{Path(scenario).stem}-{len(self.running)}", **options)
        self.running.append(peer)
        return peer.start()

    def stop_all(self) -> None:
        for peer in self.running:
            peer.stop()


def _port_taken(port: int, transport: str = "udp") -> bool:
    kind = socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return True
    return False


@pytest.fixture
def sipp_peers(sipp, tmp_path):
    """SippPeers for one test (import this fixture into the test module to use it)."""
    peers = SippPeers(sipp, tmp_path)
    try:
        yield peers
    finally:
        peers.stop_all()
