"""Who may watch an AoR's reg state, and who is a sync peer (RFC 3680 6, RFC 6665 4.2.1.2).

RFC 3680 section 6 asks the notifier to authorize every subscription, since a registration
reveals where a user is. The trusted networks (`[security] trusted`: the registrars,
proxies and application servers of the deployment) may watch any AoR we serve. With
`[notifier] watch_own`, a request from anywhere else may watch the AoR in its own From
(a phone watching its registration, RFC 3680 section 3), and nothing else: 403. A sync
peer (`[notifier] peers`, by source network or From URI) is another registrar keeping in
step with this one: it is told only this node's own changes (domain/watcher_document.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from domain.aor import normalize_aor
from domain.errors import InvalidUri
from domain.uri import SipUri, parse_uri
from sip_gateway.errors import Forbidden, MalformedMessage
from sip_gateway.server.peers import TrustedPeers
from sip_gateway.server.registrar import RegistrarPolicy, is_ip_literal


@dataclass(frozen=True)
class WatcherAccess:
    trusted: TrustedPeers
    domains: RegistrarPolicy  # the domains we keep registrations for
    watch_own: bool = False
    peer_networks: TrustedPeers = TrustedPeers(())
    peer_uris: frozenset[str] = frozenset()

    @classmethod
    def of(cls, trusted: TrustedPeers, domains: RegistrarPolicy, watch_own: bool,
           peers: Iterable[str]) -> WatcherAccess:
        uris, networks = set(), []
        for entry in peers:
            if entry.split(":", 1)[0].lower() in ("sip", "sips") and ":" in entry:
                uris.add(_canonical(entry))
            else:
                networks.append(entry)
        return cls(trusted, domains, watch_own, TrustedPeers(networks), frozenset(uris))

    def check(self, resource: str, watcher: str, source: str) -> bool:
        """Whether `watcher` (its From URI), writing from `source`, may watch `resource`
        (Forbidden otherwise); True when it is a sync peer."""
        uri = _resource(resource)
        if not self.domains.serves(uri.host) and not is_ip_literal(uri.host):
            raise Forbidden(f"domain {uri.host} is not served here")
        if not self.trusted.allows(source):
            if not self.watch_own:
                raise Forbidden(f"{source} is not a trusted peer")
            if _canonical(watcher) != _canonical(resource):
                raise Forbidden("only the AoR in From may be watched from an untrusted address")
        return self.peer_networks.allows(source) or _canonical(watcher) in self.peer_uris


def _resource(text: str) -> SipUri:
    try:
        uri = parse_uri(text)
    except InvalidUri as error:
        raise MalformedMessage(f"bad Request-URI: {error}") from None
    if not isinstance(uri, SipUri) or not uri.user:
        raise MalformedMessage("a reg SUBSCRIBE names an AoR: a SIP URI with a user part")
    return uri


def _canonical(text: str) -> str:
    try:
        return normalize_aor(text).uri
    except InvalidUri:
        return text.strip().lower()
