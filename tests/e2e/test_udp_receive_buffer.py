"""`[listen] udp_receive_buffer`: the UDP listeners ask the kernel for a deep queue, so a
burst that arrives while serve is busy waits instead of being dropped."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from infrastructure.settings import SettingsError, load_settings
from sip_gateway.transport.endpoints import Transports, grow_receive_buffer


class Sink:
    accepting = True

    def receive_datagram(self, data, arrival, send) -> None:
        pass

    def receive_message(self, message, arrival, send, *, reliable) -> None:
        pass


def _rmem_max() -> int:
    return int(Path("/proc/sys/net/core/rmem_max").read_text())


def test_the_listener_gets_the_buffer_asked_for_up_to_the_kernel_limit():
    asked = 1024 * 1024

    async def bound() -> int:
        transports = Transports(["127.0.0.1:0"], [], udp_buffer=asked)
        await transports.start(Sink())
        try:
            sock = transports._datagrams[0].get_extra_info("socket")
            return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2
        finally:
            transports.close_datagrams()

    granted = asyncio.run(bound())
    assert granted == min(asked, _rmem_max())


def test_a_capped_buffer_is_reported(caplog):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        beyond = _rmem_max() * 4
        granted = grow_receive_buffer(sock, beyond)
    assert granted < beyond
    assert "net.core.rmem_max" in caplog.text


def test_a_buffer_too_small_to_matter_is_refused():
    with pytest.raises(SettingsError, match="udp_receive_buffer"):
        load_settings(overrides={"listen": {"udp_receive_buffer": 1000}}, env={})
