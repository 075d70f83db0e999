"""A UDP relay between a notifier and its watcher that loses NOTIFYs on purpose.

The relay holds a port of its own, which the watcher gives as its Contact: the notifier's
NOTIFYs reach the relay, which forwards each to the watcher, or, with probability `loss`
(a seeded random draw), answers it 200 itself and drops it, so that the notifier counts
it delivered while the watcher never sees that version (a gap, RFC 3680 4.4). Responses
from the watcher go back to where the NOTIFY came from. Every NOTIFY is kept with what
became of it. Runs on a thread; `close` ends it.
"""

from __future__ import annotations

import random
import socket
import threading
from dataclasses import dataclass

from lxml import etree

from tests.e2e.conftest import HOST


@dataclass(frozen=True)
class Relayed:
    call_id: str
    cseq: int
    version: int | None
    full: bool
    dropped: bool


class LossyRelay:
    def __init__(self, target_port: int, loss: float, seed: int = 3680) -> None:
        self.target = (HOST, target_port)
        self.loss, self.random = loss, random.Random(seed)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.seen: list[Relayed] = []
        self._branches: dict[str, bool] = {}  # a NOTIFY's branch -> dropped
        self._origin: tuple[str, int] | None = None
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                data, source = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if data.startswith(b"SIP/2.0"):
                if self._origin is not None:
                    self.sock.sendto(data, self._origin)
                continue
            self._origin = source
            head, _, body = data.partition(b"\r\n\r\n")
            headers = _headers(head)
            branch = headers.get("via", "").partition("branch=")[2].split(";")[0]
            if branch not in self._branches:  # a retransmission shares the first's fate
                dropped = head.startswith(b"NOTIFY") and self.random.random() < self.loss
                self._branches[branch] = dropped
                if head.startswith(b"NOTIFY"):
                    self.seen.append(_relayed(headers, body, dropped))
            if self._branches[branch]:
                self.sock.sendto(_ok(head), source)
            else:
                self.sock.sendto(data, self.target)


def _headers(head: bytes) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in head.decode(errors="replace").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        found.setdefault(name.strip().lower(), value.strip())
    return found


def _relayed(headers: dict[str, str], body: bytes, dropped: bool) -> Relayed:
    version, full = None, False
    if body.strip():
        root = etree.fromstring(body)
        version, full = int(root.get("version")), root.get("state") == "full"
    return Relayed(headers.get("call-id", ""), int(headers.get("cseq", "0").split()[0]),
                   version, full, dropped)


def _ok(head: bytes) -> bytes:
    lines = head.decode(errors="replace").split("\r\n")[1:]
    kept = [line for line in lines
            if line.split(":")[0].strip().lower() in ("via", "from", "to", "call-id", "cseq")]
    return ("SIP/2.0 200 OK\r\n" + "\r\n".join(kept) + "\r\nContent-Length: 0\r\n\r\n").encode()
