"""`serve --config` on the sample as `config sample` prints it: only the store (flag) and
the listen addresses (environment) point elsewhere; it registers and stops on SIGTERM."""

from __future__ import annotations

import socket
import subprocess
import sys

from tests.e2e.conftest import HOST, ROOT, free_port
from tests.e2e.test_serve_lifecycle import register_bytes


def test_serve_runs_on_the_sample_config(gateways, sqlite_url, tmp_path):
    config = tmp_path / "pua-reginfo.toml"
    config.write_text(subprocess.run(
        [sys.executable, "-m", "infrastructure.cli", "config", "sample"], cwd=ROOT,
        capture_output=True, text=True, check=True).stdout)
    address = f"{HOST}:{free_port()}"
    gateway = gateways.launch(sqlite_url, config, address, env={
        "PUA_REGINFO_LISTEN_UDP": address, "PUA_REGINFO_LISTEN_TCP": address})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(register_bytes(gateway.port, 1), (HOST, gateway.port))
        assert sock.recv(65535).startswith(b"SIP/2.0 200 OK")
    assert gateway.stop() == 0
    assert "stopped" in gateway.log()
