"""Target: a REGISTER through the registrar mapping (sip_gateway/server/registrar.py) to
the domain's registration (domain/address_of_record.py) and the 200 OK built from it.

Property: read_register raises nothing but a PeerError, AddressOfRecord.register nothing
but a DomainError, and a refused REGISTER changes nothing and is answered with its status;
an accepted one records events that replay to the AoR's new state, and is answered 200
with one Contact per live binding, each with its remaining expires, in a response that
parses again. The AoR starts with a binding, so
refreshes, removals and out-of-order CSeqs are reached too.
"""

from __future__ import annotations

from domain import DomainError, normalize_aor
from sip_gateway.errors import PeerError
from sip_gateway.server.registrar import RegistrarPolicy, read_register, register_ok
from sip_gateway.server.responses import to_tag_for
from sip_gateway.sip import NameAddr, SipRequest, parse_message

from scripts.fuzz import seeds
from scripts.fuzz.aggregates import NODE, T0, Aors
from scripts.fuzz.checks import refusal, reparsed

NAME = "registrar"
POLICY = RegistrarPolicy(("example.com",), min_expires=60, max_expires=3600,
                         default_expires=3600)
MAX_BINDINGS = 10
seed_inputs = seeds.registers


def check(data: bytes) -> None:
    try:
        request = parse_message(data)
    except PeerError:
        return  # the sip_message target's business
    if not isinstance(request, SipRequest):
        return
    try:
        command = read_register(request, POLICY, source=("127.0.0.1", 5999), transport="UDP",
                                local=("127.0.0.1", 5060))
        identity = normalize_aor(command.aor)
    except (PeerError, DomainError) as error:
        refusal(request, error)
        return
    aors = Aors(command.aor)
    aggregate = aors.load(identity)
    if command.request is not None:
        try:
            aggregate.register(command.request, NODE, T0, MAX_BINDINGS)
        except DomainError as error:
            assert aors.unchanged(), f"refused ({error}) but changed"
            refusal(request, error)
            return
    assert aors.replayed(), "the events do not replay to the aggregate's state"
    bindings = aggregate.live_bindings(T0)
    response = reparsed(register_ok(request, bindings, T0, to_tag=to_tag_for(request)))
    contacts = response.headers.get_all("Contact")
    assert response.status == 200 and len(contacts) == len(bindings), response.serialize()
    for contact, binding in zip(contacts, bindings):
        assert NameAddr.parse(contact).param("expires") == str(binding.remaining(T0)), contact
