"""A real `pua-reginfo serve` on loopback for end-to-end tests, stopped by PID afterwards."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sip_gateway.transport.listeners import parse_listen

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
    where = f"[{host}]" if ":" in host else host
    message = (f"OPTIONS sip:{where}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {where}:9;branch=z9hG4bK{branch};rport\r\n"
               f"Max-Forwards: 70\r\nFrom: <sip:probe@{where}>;tag=p\r\nTo: <sip:{where}:{port}>\r\n"
               f"Call-ID: {branch}@probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
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
    config_path: Path | None = None  # the settings file serve reads; the CLI reads it too

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """A command against serve's store, with serve's settings file."""
        config = ["--config", str(self.config_path)] if self.config_path else []
        return subprocess.run([sys.executable, "-m", "infrastructure.cli", *args, "--store",
                               self.store_url, *config], capture_output=True, text=True,
                              timeout=60, cwd=ROOT)

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
        """Start serve; `config` is TOML merged over loopback listeners on a free port."""
        port = free_port()
        settings = {"listen": {"udp": [f"{HOST}:{port}"], "tcp": [f"{HOST}:{port}"]},
                    "registrar": {"domains": ["example.com"]}, "node": {"id": "e2e"}}
        for section, values in tomllib.loads(config).items():
            if isinstance(values, dict):
                settings.setdefault(section, {}).update(values)
            else:  # an array of tables, e.g. [[subscribe]]: taken as given
                settings[section] = values
        config_path = self.tmp_path / f"gateway-{len(self.running)}.toml"
        config_path.write_text(_toml(settings))
        return self.launch(store_url, config_path, settings["listen"]["udp"][0], env)

    def launch(self, store_url: str, config_path: Path, probe: str,
               env: dict | None = None) -> RunningGateway:
        """Start serve on the settings file as written, once it answers OPTIONS on the UDP
        address `probe` (HOST:PORT)."""
        probe_host, probe_port = parse_listen(probe)
        log_path = self.tmp_path / f"gateway-{len(self.running)}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "infrastructure.cli", "serve", "--store", store_url,
                 "--config", str(config_path)],
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **(env or {})})
        gateway = RunningGateway(probe_port, store_url, process, log_path, probe_host,
                                 config_path=config_path)
        self.running.append(gateway)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not gateway.alive():
                raise AssertionError(f"serve exited early:\n{gateway.log()}")
            if options(probe_port, probe_host).startswith(b"SIP/2.0 200"):
                return gateway
            time.sleep(0.1)
        raise AssertionError(f"serve did not answer OPTIONS:\n{gateway.log()}")

    def stop_all(self) -> None:
        for gateway in self.running:
            gateway.stop()


def _toml(settings: dict) -> str:
    """Settings (tables and arrays of tables of strings, numbers, booleans, lists) as TOML."""
    def value(item):
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, (int, float)):
            return str(item)
        if isinstance(item, list):
            return "[" + ", ".join(value(v) for v in item) + "]"
        return '"' + str(item).replace("\\", "\\\\").replace('"', '\\"') + '"'
    def table(header: str, values: dict) -> str:
        return header + "\n" + "".join(f"{k} = {value(v)}\n" for k, v in values.items())
    tables = [table(f"[{name}]", values) for name, values in settings.items()
              if isinstance(values, dict)]
    arrays = [table(f"[[{name}]]", item) for name, items in settings.items()
              if isinstance(items, list) for item in items]
    return "".join(tables + arrays)


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


def wait_for_workers(gateway: RunningGateway, count: int, timeout: float = 30.0,
                     already: int = 0) -> None:
    """Wait until `count` UDP workers (beyond `already` earlier ones) logged that they
    serve (serve answers OPTIONS itself before its workers are up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gateway.log().count("] ready (pid ") >= already + count:
            return
        if not gateway.alive():
            raise AssertionError(f"serve exited:\n{gateway.log()}")
        time.sleep(0.05)
    raise AssertionError(f"{count} udp worker(s) not ready in {timeout} s:\n{gateway.log()}")
