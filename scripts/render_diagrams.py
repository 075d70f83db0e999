"""Write the README's diagrams from the code: the state machines from the domain's
specifications, and the request flows from the steps below, each naming the module and
function that does it.

Run `python3 scripts/render_diagrams.py` after changing a machine or a step of a flow; a
test fails while the README and this disagree, or while a step names a function the code
does not have.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from domain import CONTACT_MACHINE, REGISTRATION_MACHINE  # noqa: E402
from domain.resource_subscription_machine import RESOURCE_SUBSCRIPTION_MACHINE  # noqa: E402
from domain.watcher_machine import WATCHER_MACHINE  # noqa: E402

MACHINES = {"registration": REGISTRATION_MACHINE, "contact": CONTACT_MACHINE,
            "resource-subscription": RESOURCE_SUBSCRIPTION_MACHINE, "watcher": WATCHER_MACHINE}

# Participants of the flows: name -> what stands there (a folder or file of the project,
# or a peer on the network).
PARTICIPANTS = {
    "UA": "UA / notifier", "transport": "sip_gateway/transport",
    "core": "sip_gateway/server/core.py", "server": "sip_gateway/server",
    "service": "infrastructure", "domain": "domain", "store": "event store",
    "serve": "infrastructure/serve.py", "projections": "projections",
    "client": "sip_gateway/client", "PS": "presence server",
}

# A step: (from, to, "module:qualified.name", note). The README shows the function and
# its module; the test imports each one.
FLOWS = {
    "register-to-publish": [
        ("UA", "transport", "sip_gateway.transport.listeners:UdpProtocol.datagram_received",
         "REGISTER"),
        ("transport", "core", "sip_gateway.server.core:SipCore.receive_datagram",
         "parse, server transaction, stamp Via"),
        ("core", "server", "sip_gateway.server.handlers:RequestHandler.handle", "trusted?"),
        ("server", "server", "sip_gateway.server.registrar:read_register",
         "RFC 3261 10.3 steps 1-7"),
        ("server", "service", "infrastructure.gateway_port:ExecutorPort.register",
         "Register command"),
        ("service", "service", "infrastructure.executor:GroupCommitExecutor.submit",
         "group commit"),
        ("service", "domain", "infrastructure.command_handlers:register", "one unit of work"),
        ("domain", "domain", "domain.address_of_record:AddressOfRecord.register",
         "RFC 3680 contact events"),
        ("service", "store", "infrastructure.unit_of_work:UnitOfWork.commit",
         "all the batch's events, one transaction"),
        ("server", "core", "sip_gateway.server.registrar:register_ok", "200 OK after commit"),
        ("serve", "projections", "projections.catch_up:catch_up", "after each commit"),
        ("projections", "projections", "projections.usrloc.view:LocationView.apply",
         "usrloc rows + position"),
        ("serve", "projections",
         "projections.publisher.projection:PublisherProjection.catch_up",
         "one document per local change"),
        ("projections", "domain", "domain.publication_document:publication_document",
         "full state (RFC 3680 5.3)"),
        ("projections", "projections", "projections.publisher.view:PublisherView.apply",
         "durable outbox"),
        ("client", "client", "sip_gateway.client.publication_queue:PublicationQueue.feed",
         "next document, in order"),
        ("client", "client", "sip_gateway.client.publication:Publication.next_request",
         "RFC 3903 initial/modify/refresh/remove"),
        ("client", "client", "sip_gateway.client.publication_request:build_publish", ""),
        ("client", "transport", "sip_gateway.client.outbound:Outbound.request",
         "client transaction"),
        ("transport", "PS", "sip_gateway.transport.endpoints:Transports.send_datagram",
         "PUBLISH"),
        ("PS", "transport", "sip_gateway.transport.listeners:UdpProtocol.datagram_received",
         "200 OK, SIP-ETag"),
        ("transport", "core", "sip_gateway.server.core:SipCore.receive_datagram", ""),
        ("core", "client", "sip_gateway.client.outbound:Outbound.on_response",
         "to its client transaction"),
        ("client", "service", "infrastructure.outbound_stores:PublicationsInStore.acknowledge",
         "entity-tag kept, document leaves the outbox"),
    ],
    "notify-to-usrloc": [
        ("UA", "transport", "sip_gateway.transport.listeners:UdpProtocol.datagram_received",
         "NOTIFY (Event: reg)"),
        ("transport", "core", "sip_gateway.server.core:SipCore.receive_datagram",
         "parse, server transaction"),
        ("core", "server", "sip_gateway.server.handlers:RequestHandler.handle", ""),
        ("server", "server", "sip_gateway.server.notify_modes:RfcMode.read",
         "489/415/400 checks, strict parse"),
        ("server", "client", "sip_gateway.client.subscription_keeper:SubscriptionKeeper.claim",
         "one of our dialogs?"),
        ("server", "service", "infrastructure.gateway_port:ExecutorPort.notify",
         "ApplyNotify command"),
        ("service", "service", "infrastructure.command_handlers:belongs_to_us",
         "481 unless ours or unsolicited allowed"),
        ("service", "domain", "sip_gateway.server.notify_modes:RfcMode.apply", ""),
        ("domain", "domain", "domain.notify_rfc:apply_rfc", "versions, full/partial merge"),
        ("domain", "domain", "domain.address_of_record:AddressOfRecord.apply_notified",
         "contact events, origin notify"),
        ("service", "store", "infrastructure.unit_of_work:UnitOfWork.commit", ""),
        ("server", "core", "sip_gateway.server.responses:make_response", "200 after commit"),
        ("serve", "projections", "projections.catch_up:catch_up", "after each commit"),
        ("projections", "projections",
         "projections.usrloc.projection:UsrlocProjection.process", ""),
        ("projections", "projections", "projections.usrloc.view:LocationView.apply",
         "usrloc rows + position"),
    ],
}


def machine_block(name: str) -> str:
    return (f"<!-- diagram:{name} (generated by scripts/render_diagrams.py) -->\n"
            f"```mermaid\n{MACHINES[name].mermaid()}\n```\n<!-- /diagram:{name} -->")


def flow_mermaid(name: str) -> str:
    steps = FLOWS[name]
    used = [p for p in PARTICIPANTS if any(p in (s[0], s[1]) for s in steps)]
    lines = ["sequenceDiagram"]
    lines += [f"    participant {p} as {PARTICIPANTS[p]}" for p in used]
    for source, target, where, note in steps:
        module, qualified = where.split(":")
        label = f"{qualified} ({module.replace('.', '/')}.py)"
        lines.append(f"    {source}->>{target}: {label}" + (f": {note}" if note else ""))
    return "\n".join(lines)


def flow_block(name: str) -> str:
    return (f"<!-- diagram:{name} (generated by scripts/render_diagrams.py) -->\n"
            f"```mermaid\n{flow_mermaid(name)}\n```\n<!-- /diagram:{name} -->")


def pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"<!-- diagram:{name} .*?<!-- /diagram:{name} -->", re.S)


def render(text: str) -> str:
    for name in MACHINES:
        text = pattern(name).sub(lambda _m, n=name: machine_block(n), text)
    for name in FLOWS:
        text = pattern(name).sub(lambda _m, n=name: flow_block(n), text)
    return text


if __name__ == "__main__":
    readme = ROOT / "README.md"
    readme.write_text(render(readme.read_text()))
