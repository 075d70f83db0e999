"""The trusted-peer list: networks allowed to send REGISTER and NOTIFY (others get 403)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache


class TrustedPeers:
    def __init__(self, networks: Iterable[str]):
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    def allows(self, address: str) -> bool:
        return self._allows(address)

    @lru_cache(maxsize=4096)  # noqa: B019 (the peers live as long as the gateway)
    def _allows(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            return False
        if getattr(ip, "ipv4_mapped", None) is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)
