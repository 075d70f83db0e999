"""A real `pua-reginfo serve` on loopback for end-to-end tests, stopped by PID afterwards."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


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


def options(port: int, host: str = HOST, timeout: float = 0.5) -> bytes:
    """Send an OPTIONS over UDP and return the response bytes ('' on timeout)."""
    branch = uuid.uuid4().hex
    message = (f"OPTIONS sip:{host}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {host}:9;branch=z9hG4bK{branch};rport\r\n"
               f"Max-Forwards: 70\r\nFrom: <sip:probe@{host}>;tag=p\r\nTo: <sip:{host}:{port}>\r\n"
               f"Call-ID: {branch}@probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(message, (host, port))
        try:
            return sock.recv(65535)
        except OSError:
            return b""


@dataclass
class RunningGateway:
    port: int
    store_url: str
    process: subprocess.Popen
    log_path: Path
    host: str = HOST
    extra: dict = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "infrastructure.cli", *args, "--store",
                               self.store_url], capture_output=True, text=True, timeout=60, cwd=ROOT)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


class Gateways:
    """Starts gateways for one test and stops every one of them afterwards."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.running: list[RunningGateway] = []

    def start(self, store_url: str, config: str = "", env: dict | None = None) -> RunningGateway:
        port = free_port()
        name = f"gateway-{len(self.running)}"
        config_path = self.tmp_path / f"{name}.toml"
        config_path.write_text(
            f'[listen]\nudp = ["{HOST}:{port}"]\ntcp = ["{HOST}:{port}"]\n'
            '[registrar]\ndomains = ["example.com"]\n[node]\nid = "e2e"\n' + config)
        log_path = self.tmp_path / f"{name}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "infrastructure.cli", "serve", "--store", store_url,
                 "--config", str(config_path)],
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **(env or {})})
        gateway = RunningGateway(port, store_url, process, log_path)
        self.running.append(gateway)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not gateway.alive():
                raise AssertionError(f"serve exited early:\n{gateway.log()}")
            if options(port).startswith(b"SIP/2.0 200"):
                return gateway
            time.sleep(0.1)
        raise AssertionError(f"serve did not answer OPTIONS:\n{gateway.log()}")

    def stop_all(self) -> None:
        for gateway in self.running:
            gateway.stop()


@pytest.fixture
def gateways(tmp_path):
    started = Gateways(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture
def sipp() -> str:
    path = shutil.which("sipp")
    if path is None:
        pytest.fail("sipp is needed (Debian package sip-tester; scripts/test installs it)")
    return path
