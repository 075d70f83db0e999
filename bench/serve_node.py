"""`serve` processes for the reliability scripts: started, SIGKILLed and stopped by PID.

A Node is one `serve` on its own loopback port, `[node] id` and settings file (UDP only,
domain example.com, plus whatever TOML the caller adds); `cli` and `view_rows` run
`pua-reginfo` commands against the store the nodes share.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.register_load import HOST
from bench.sipp_runs import free_port, options_answered

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0  # seconds for a node to answer OPTIONS


class Node:
    """One `serve` process, started and stopped by PID."""

    def __init__(self, store_url: str, folder: Path, name: str, port: int | None = None,
                 settings: str = "", udp_workers: int = 0):
        self.store_url, self.name = store_url, name
        self.port = port or free_port()
        self.config = folder / f"{name}.toml"
        if "[reginfo]" not in settings:
            settings += "[reginfo]\npublish_reginfo = false\n"
        self.config.write_text(
            f'[listen]\nudp = ["{HOST}:{self.port}"]\ntcp = []\nudp_workers = {udp_workers}\n'
            f'[registrar]\ndomains = ["example.com"]\n[node]\nid = "{name}"\n{settings}')
        self.log = folder / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "infrastructure.cli", "serve", "--store", self.store_url,
                 "--config", str(self.config), "--log-level", "WARNING"],
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited early: {self.log.read_text()[-2000:]}")
            if options_answered(self.port):
                return
            time.sleep(0.05)
        raise SystemExit(f"{self.name} did not answer OPTIONS")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def tracebacks(self) -> int:
        return self.log.read_text(errors="replace").count("Traceback")


def cli(store_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "infrastructure.cli", *args, "--store", store_url],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def view_rows(store_url: str) -> list[dict]:
    result = cli(store_url, "query", "--json")
    if result.returncode != 0:
        raise SystemExit(f"query failed: {result.stderr}")
    return json.loads(result.stdout)
