"""sd_notify without libsystemd: datagrams on the socket NOTIFY_SOCKET names."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from infrastructure.systemd_notify import notify


@pytest.fixture
def listener(tmp_path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        path = tmp_path / "notify.sock"
        sock.bind(str(path))
        sock.settimeout(2)
        yield str(path), sock


def test_a_state_is_one_datagram_on_the_socket(listener):
    path, sock = listener
    assert notify("READY=1", {"NOTIFY_SOCKET": path})
    assert notify("STOPPING=1", {"NOTIFY_SOCKET": path})
    assert [sock.recv(4096), sock.recv(4096)] == [b"READY=1", b"STOPPING=1"]


def test_an_abstract_socket_is_named_with_a_leading_at():
    name = f"pua-reginfo-test-{os.getpid()}-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        assert notify("READY=1", {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"READY=1"


def test_without_notify_socket_nothing_is_sent():
    assert notify("READY=1", {}) is False


def test_a_socket_nobody_listens_on_is_logged_not_raised(tmp_path, caplog):
    assert notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}) is False
    assert "cannot notify systemd (READY=1)" in caplog.text
