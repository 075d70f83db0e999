"""Where responses go: the top Via as the server stamps it (RFC 3261 18.2.1, 18.2.2; RFC 3581).

On receipt the server adds `received` when the sent-by host is not the packet's source
address, and fills a bare `rport` with the source port. Responses over a connection go
back on it; over UDP they go to `received` (else the sent-by host) and to `rport` when the
client asked for it (else the sent-by port, else 5060).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from sip_gateway.sip import Via

DEFAULT_PORT = 5060


def stamp_via(via: Via, source: tuple[str, int]) -> Via:
    """The top Via with `received`/`rport` filled in from the packet's source."""
    host, port = source
    params = []
    for name, value in via.params:
        lowered = name.lower()
        if lowered in ("received",):
            continue
        if lowered == "rport":
            value = str(port)
        params.append((name, value))
    if not _same_address(via.host, host):
        params.append(("received", host))
    stamped = tuple(params)
    if stamped == via.params:  # nothing to fill in: the Via as it came
        return via
    return Via(via.transport, via.host, via.port, stamped, via.protocol)


def response_destination(via: Via) -> tuple[str, int]:
    """The UDP address a response to a request with this (stamped) top Via goes to."""
    host = via.received or via.host.strip("[]")
    port = via.rport or via.port or DEFAULT_PORT
    return host.strip("[]"), port


@lru_cache(maxsize=4096)
def _same_address(sent_by: str, source: str) -> bool:
    try:
        return ipaddress.ip_address(sent_by.strip("[]")) == ipaddress.ip_address(source)
    except ValueError:
        return False
