"""`serve` under a `Type=notify` unit: READY=1 once it serves, STOPPING=1 on SIGTERM."""

from __future__ import annotations

import socket

from tests.e2e.conftest import options


def test_serve_tells_systemd_it_is_ready_then_stopping(gateways, sqlite_url, tmp_path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        path = tmp_path / "notify.sock"
        systemd.bind(str(path))
        systemd.settimeout(10)
        gateway = gateways.start(sqlite_url, env={"NOTIFY_SOCKET": str(path)})
        assert systemd.recv(4096) == b"READY=1"
        assert options(gateway.port).startswith(b"SIP/2.0 200")
        assert gateway.stop() == 0
        assert systemd.recv(4096) == b"STOPPING=1"
