"""Tell systemd how `serve` is doing (sd_notify(3)), for a unit of `Type=notify`.

systemd passes the address of its notification socket in `NOTIFY_SOCKET`: a path, or an
abstract socket name written with a leading '@'. Each state is one datagram of
`KEY=value` lines. Without the variable (not started by systemd) nothing is sent; a
socket that cannot be reached is logged and never stops serve.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("pua_reginfo.systemd")


def notify(state: str, env: Mapping[str, str] = os.environ) -> bool:
    """Send `state` (e.g. "READY=1") to systemd; whether it was sent."""
    address = env.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as error:
        log.warning("cannot notify systemd (%s): %s", state, error)
        return False
    return True


def ready() -> bool:
    """serve takes requests: transports, workers and background jobs are up."""
    return notify("READY=1")


def stopping() -> bool:
    """serve has begun to drain and stop."""
    return notify("STOPPING=1")
