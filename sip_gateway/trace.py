"""The SIP message trace: every message received and sent, whole, at DEBUG on the
`pua_reginfo.sip.trace` logger (`[log] level = "debug"`). Costs one level check per
message when it is off.
"""

from __future__ import annotations

import logging

from sip_gateway.transport import Address, Send

log = logging.getLogger("pua_reginfo.sip.trace")


def tracing() -> bool:
    return log.isEnabledFor(logging.DEBUG)


def received(data: bytes, transport: str, source: Address) -> None:
    log.debug("received over %s from %s:\n%s", transport, _where(source), _text(data))


def sent(data: bytes, transport: str, destination: Address) -> None:
    log.debug("sent over %s to %s:\n%s", transport, _where(destination), _text(data))


def traced(send: Send, transport: str) -> Send:
    """`send`, tracing each message it sends."""

    def send_traced(data: bytes, destination: Address) -> None:
        sent(data, transport, destination)
        send(data, destination)

    return send_traced


def _where(address: Address) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace").rstrip("\r\n")
