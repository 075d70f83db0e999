"""`[listen] udp_workers`: processes that take UDP requests beside serve, on its address.

REGISTERs from one socket are spread over the workers and each is committed before its
200; a retransmission is not applied twice whichever process gets it; a worker killed
with SIGKILL is started again and the service keeps answering meanwhile; stopping serve
stops every worker.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.e2e.conftest import HOST, wait_for_workers

WORKERS = 2
CONFIG = f"[listen]\ntcp = []\nudp_workers = {WORKERS}\n[reginfo]\npublish_reginfo = false\n"


def register(user: str, port: int, local: int, branch: str, cseq: int = 1) -> bytes:
    return (f"REGISTER sip:example.com SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bK-{branch};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:{user}@example.com>;tag=t-{user}\r\n"
            f"To: <sip:{user}@example.com>\r\nCall-ID: call-{user}@{HOST}\r\n"
            f"CSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{HOST}:{local}>;expires=600\r\n"
            f"Content-Length: 0\r\n\r\n").encode()


def exchange(sock: socket.socket, data: bytes, port: int, tries: int = 8) -> bytes:
    """Send `data` and return the answer, retransmitting every 0.5 s as a UA does (RFC
    3261 Timer E): a datagram queued on a worker that dies is lost with it."""
    sock.settimeout(0.5)
    for _ in range(tries):
        sock.sendto(data, (HOST, port))
        try:
            return sock.recv(65535)
        except TimeoutError:
            continue
    raise AssertionError(f"no answer to {tries} copies")


@contextmanager
def ua_socket() -> Iterator[tuple[socket.socket, int]]:
    """A UA's UDP socket on loopback, and its port."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        yield sock, sock.getsockname()[1]


def worker_pids(log: str) -> dict[int, int]:
    """The pid each worker index last reported, from the log."""
    return {int(index): int(pid)
            for index, pid in re.findall(r"\[udp worker (\d+)\] ready \(pid (\d+)\)", log)}


def test_workers_share_the_address_and_commit_through_serve(gateways, sqlite_url):
    gateway = gateways.start(sqlite_url, CONFIG)
    wait_for_workers(gateway, WORKERS)
    with ua_socket() as (sock, local):
        for n in range(40):
            reply = exchange(sock, register(f"u{n}", gateway.port, local, f"b{n}"), gateway.port)
            assert reply.startswith(b"SIP/2.0 200"), reply
            assert f"<sip:u{n}@{HOST}:{local}>".encode() in reply
    log = gateway.log()
    answered_by = set(re.findall(r"\[udp worker (\d+)\] method=REGISTER", log))
    assert answered_by == {"1", "2"}, log
    out = gateway.cli("query", "--json")
    assert out.returncode == 0, out.stderr
    assert {row["aor"] for row in json.loads(out.stdout)} == {
        f"sip:u{n}@example.com" for n in range(40)}


def test_a_retransmission_is_answered_200_whichever_process_takes_it(gateways, sqlite_url):
    """The same REGISTER (same branch, Call-ID and CSeq) sent many times: drawn at random,
    the copies reach both workers (20 copies all to one: one chance in 500,000); each is
    answered 200, and the binding is stored once."""
    gateway = gateways.start(sqlite_url, CONFIG)
    wait_for_workers(gateway, WORKERS)
    with ua_socket() as (sock, local):
        data = register("carol", gateway.port, local, "same", cseq=7)
        replies = [exchange(sock, data, gateway.port) for _ in range(20)]
    assert all(reply.startswith(b"SIP/2.0 200") for reply in replies), replies
    assert all(f"<sip:carol@{HOST}:{local}>".encode() in reply for reply in replies)
    deadline = time.monotonic() + 5
    while set(re.findall(r"\[udp worker (\d+)\] method=REGISTER aor=sip:carol@",
                         gateway.log())) != {"1", "2"}:
        assert time.monotonic() < deadline, gateway.log()  # both workers answered a copy
        time.sleep(0.05)
    out = gateway.cli("query", "--json", "--aor", "sip:carol@example.com")
    rows = json.loads(out.stdout)
    assert [(row["cseq"], row["callid"]) for row in rows] == [(7, f"call-carol@{HOST}")]
    audit = gateway.cli("audit", "--json", "sip:carol@example.com")
    assert audit.returncode == 0, audit.stderr
    events = [event["event"] for event in json.loads(audit.stdout)]
    assert events == ["registration.init", "registered", "registration.active"], events


def test_a_killed_worker_is_started_again_and_stop_ends_them_all(gateways, sqlite_url):
    gateway = gateways.start(sqlite_url, CONFIG)
    wait_for_workers(gateway, WORKERS)
    first = worker_pids(gateway.log())
    assert set(first) == {1, 2}
    os.kill(first[1], signal.SIGKILL)
    with ua_socket() as (sock, local):
        for n in range(10):  # while worker 1 is away: the others and serve answer
            reply = exchange(sock, register(f"k{n}", gateway.port, local, f"k{n}"), gateway.port)
            assert reply.startswith(b"SIP/2.0 200"), reply
        wait_for_workers(gateway, 1, already=WORKERS)
        assert "udp worker 1 exited (signal 9)" in gateway.log()
        again = worker_pids(gateway.log())
        assert again[1] != first[1] and again[2] == first[2]
        for n in range(10):
            reply = exchange(sock, register(f"r{n}", gateway.port, local, f"r{n}"), gateway.port)
            assert reply.startswith(b"SIP/2.0 200"), reply
    assert gateway.stop() == 0
    for pid in again.values():
        assert not _running(pid), f"udp worker pid {pid} outlived serve"


def test_workers_exit_when_serve_is_killed(gateways, sqlite_url):
    gateway = gateways.start(sqlite_url, CONFIG)
    wait_for_workers(gateway, WORKERS)
    pids = worker_pids(gateway.log())
    gateway.process.kill()
    gateway.process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_running(pid) for pid in pids.values())


def test_serve_restarted_at_once_after_a_sigkill_takes_its_address_back(gateways, sqlite_url):
    """A supervisor restarts serve the moment it died: its old workers may hold the address
    a few milliseconds longer; the new serve waits for them and serves, with new workers."""
    gateway = gateways.start(sqlite_url, CONFIG)
    wait_for_workers(gateway, WORKERS)
    old = worker_pids(gateway.log())
    gateway.process.kill()
    gateway.process.wait(timeout=10)
    again = gateways.start(sqlite_url, CONFIG.replace(
        "[listen]\n", f'[listen]\nudp = ["{HOST}:{gateway.port}"]\n'))
    wait_for_workers(again, WORKERS)
    assert again.port == gateway.port
    assert not set(worker_pids(again.log()).values()) & set(old.values())
    with ua_socket() as (sock, local):
        reply = exchange(sock, register("back", again.port, local, "back"), again.port)
    assert reply.startswith(b"SIP/2.0 200"), reply


def test_an_address_another_process_holds_is_refused(gateways, sqlite_url):
    """serve does not join a reuseport group it did not make (nor share a plain socket's
    address): it exits with the bind error, after waiting its 2 s for a dying serve's
    workers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((HOST, 0))
        port = holder.getsockname()[1]
        with pytest.raises(AssertionError,
                           match=f"cannot listen: udp {HOST}:{port}: Address already in use"):
            gateways.start(sqlite_url, CONFIG.replace("[listen]\n",
                                                      f'[listen]\nudp = ["{HOST}:{port}"]\n'))


def test_workers_on_ipv6(gateways, sqlite_url):
    gateway = gateways.start(sqlite_url, CONFIG.replace("[listen]\n", "[listen]\n"
                                                        f'udp = ["[::1]:{_free_v6_port()}"]\n'))
    wait_for_workers(gateway, WORKERS)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.bind(("::1", 0))
        sock.settimeout(5)
        local = sock.getsockname()[1]
        data = register("six", gateway.port, local, "six").replace(
            f"{HOST}:{local}".encode(), f"[::1]:{local}".encode())
        sock.sendto(data, ("::1", gateway.port))
        reply = sock.recv(65535)
    assert reply.startswith(b"SIP/2.0 200"), reply
    deadline = time.monotonic() + 5
    while not re.search(r"\[udp worker \d\] method=REGISTER aor=sip:six@", gateway.log()):
        assert time.monotonic() < deadline, gateway.log()
        time.sleep(0.05)


def _free_v6_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.bind(("::1", 0))
        return sock.getsockname()[1]


def _running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie, exited but not yet reaped, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
