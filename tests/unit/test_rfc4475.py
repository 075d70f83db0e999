"""RFC 4475 "SIP Torture Test Messages", each case answered as the gateway answers it.

One message of our own per case of the RFC (tests/fixtures/rfc4475, written by its
generate.py from what the RFC's section 3 says each case exercises) goes through
SipCore.receive_datagram from a trusted peer with the registrar on, as a datagram would.
The table gives, per case, its section and the status we answer (None: nothing is sent
back: responses go to our client transactions, and none matches). Where the RFC allows
either a strict or a liberal answer, or names a status our server does not give for a
reason of its own, the table says which we chose and why.
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import pytest

from domain import AddressOfRecord, normalize_aor
from sip_gateway.server.core import SipCore
from sip_gateway.server.handlers import GatewayPolicy, RequestHandler
from sip_gateway.server.notify_modes import notify_mode
from sip_gateway.server.peers import TrustedPeers
from sip_gateway.server.registrar import RegistrarPolicy
from sip_gateway.sip import ServerTransactionLayer, SipResponse, parse_message
from sip_gateway.transport import Arrival

MESSAGES = Path(__file__).resolve().parents[1] / "fixtures/rfc4475"
T0 = 1_800_000_000.0
POLICY = GatewayPolicy(RegistrarPolicy(("example.com",), 60, 3600, 3600),
                       TrustedPeers(["127.0.0.0/8"]), notify_mode("rfc"))
INVITE = 405  # this server holds no INVITE state: refused before anything else is read
NOT_SERVED = 405  # a method we do not serve; RFC 3261 8.2.1 gives 501 for one we do not
# know, we answer 405 with Allow for every method but REGISTER, NOTIFY and OPTIONS.

ANSWERS: dict[str, tuple[str, int | None]] = {
    # 3.1.1 Valid messages: each processed.
    "wsinv": ("3.1.1.1", INVITE),
    "intmeth": ("3.1.1.2", NOT_SERVED),  # quoted NUL, BEL, DEL; '?' in a URI's user part
    "esc01": ("3.1.1.3", INVITE),
    "escnull": ("3.1.1.4", 200),
    "esc02": ("3.1.1.5", NOT_SERVED),  # RE%47IST%45R is not REGISTER
    "lwsdisp": ("3.1.1.6", 200),
    "longreq": ("3.1.1.7", INVITE),
    "dblreq": ("3.1.1.8", 200),  # the INVITE after the REGISTER's body is ignored
    "semiuri": ("3.1.1.9", 200),
    "transports": ("3.1.1.10", 200),
    "mpart01": ("3.1.1.11", NOT_SERVED),
    "unreason": ("3.1.1.12", None),
    "noreason": ("3.1.1.13", None),
    # 3.1.2 Invalid messages: 400 unless said otherwise.
    "badinv01": ("3.1.2.1", 400),  # unreadable top Via: answered to the source address
    "clerr": ("3.1.2.2", 400),
    "ncl": ("3.1.2.3", 400),
    "scalar02": ("3.1.2.4", 400),
    "scalarlg": ("3.1.2.5", None),
    "quotbal": ("3.1.2.6", 400),  # From and To are read before any method is refused
    "ltgtruri": ("3.1.2.7", 400),
    "lwsruri": ("3.1.2.8", 400),
    "lwsstart": ("3.1.2.9", INVITE),  # liberal, as the RFC allows: extra SPs ignored
    "trws": ("3.1.2.10", 200),  # liberal likewise: SPs after the version ignored
    "escruri": ("3.1.2.11", 400),
    "baddate": ("3.1.2.12", INVITE),  # the Date is never read (the RFC allows ignoring it)
    "regbadct": ("3.1.2.13", 200),  # liberal: the brackets inferred, as the RFC allows
    "badaspec": ("3.1.2.14", 200),  # liberal: spaces in <> ignored, as the RFC allows
    "baddn": ("3.1.2.15", 400),
    "badvers": ("3.1.2.16", 505),
    "mismatch01": ("3.1.2.17", 400),
    "mismatch02": ("3.1.2.18", 400),  # 501 or 400, says the RFC
    "bigcode": ("3.1.2.19", None),
    # 3.2 Transaction layer: a branch of the magic cookie alone is taken as a key.
    "badbranch": ("3.2.1", 200),
    # 3.3 Application layer semantics.
    "insuf": ("3.3.1", 400),  # no Call-ID, From, To: answered with what there is
    "unkscm": ("3.3.2", 416),
    "novelsc": ("3.3.3", 416),
    "unksm2": ("3.3.4", 400),  # a registrar needs a SIP AoR in To (its http From is read first)
    "bext01": ("3.3.5", 420),
    "invut": ("3.3.6", INVITE),  # 415 says the RFC; the method is refused first (8.2.1)
    "regaut01": ("3.3.7", 200),  # no authentication here: Authorization is ignored
    "multi01": ("3.3.8", 400),
    "mcl01": ("3.3.9", 400),
    "bcast": ("3.3.10", None),
    "zeromf": ("3.3.11", 200),  # Max-Forwards 0 stops forwarding, not a UAS
    "cparam01": ("3.3.12", 200),
    "cparam02": ("3.3.13", 200),
    "regescrt": ("3.3.14", 200),
    "sdp01": ("3.3.15", INVITE),  # 406 says the RFC; the method is refused first (8.2.1)
    # 3.4 Backward compatibility.
    "inv2543": ("3.4.1", INVITE),
}
VALID = [name for name, (section, _) in ANSWERS.items() if section.startswith("3.1.1.")]


class MemoryPort:
    """The registration port on in-memory AoRs (no NOTIFY reaches it here)."""

    def __init__(self) -> None:
        self.aors: dict = {}

    async def register(self, aor, request):
        identity = normalize_aor(aor)
        if identity.id not in self.aors:
            self.aors[identity.id] = AddressOfRecord.initialize(identity, "register", "n",
                                                                "rfc4475", T0)
        if request is not None:
            self.aors[identity.id].register(request, "n", T0)
        return self.aors[identity.id].live_bindings(T0)


def answered(name: str) -> list[SipResponse]:
    """What the gateway sends back for the message `name`, each response parsed."""
    core = SipCore(RequestHandler(MemoryPort(), POLICY, lambda: T0), ServerTransactionLayer(),
                   lambda: T0)
    sent: list[bytes] = []

    async def serve() -> None:
        core.receive_datagram((MESSAGES / f"{name}.dat").read_bytes(),
                              Arrival(("127.0.0.1", 5999), "udp", ("127.0.0.1", 5060)),
                              lambda data, _: sent.append(data))
        await core.drain()

    asyncio.run(serve())
    return [parse_message(data) for data in sent]


def test_the_table_holds_every_message_of_the_rfc():
    assert sorted(path.stem for path in MESSAGES.glob("*.dat")) == sorted(ANSWERS)
    assert len(ANSWERS) == 49


def test_the_files_are_what_the_generator_writes():
    spec = importlib.util.spec_from_file_location("rfc4475_generate", MESSAGES / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    written = generate.messages()
    assert list(written) == list(ANSWERS)  # in the RFC's order
    for name, data in written.items():
        assert (MESSAGES / f"{name}.dat").read_bytes() == data, name


@pytest.mark.parametrize("name", ANSWERS)
def test_each_message_gets_its_answer(name):
    section, status = ANSWERS[name]
    responses = answered(name)
    if status is None:
        assert responses == [], f"{section} {name}"
        return
    assert [response.status for response in responses] == [status], f"{section} {name}"
    if status >= 400:
        assert responses[0].headers.get("Warning"), f"{section} {name}"


@pytest.mark.parametrize("name", VALID)
def test_the_valid_messages_parse(name):
    parse_message((MESSAGES / f"{name}.dat").read_bytes())


@pytest.mark.parametrize("name, contacts", [
    # 3.3.12: without <> the parameter belongs to the header, not to the URI
    ("cparam01", ["<sip:+15555550123@gw7.example.org>;expires=3600"]),
    ("cparam02", ["<sip:+15555550123@gw7.example.org;mysteryparam>;expires=3600"]),
    ("regescrt", ["<sip:sven@192.0.2.65?Route=%3Csip:edge.example.org%3E>;expires=3600"]),
    # 3.1.1.4: %00 and %00%00 are two users, two bindings
    ("escnull", ["<sip:%00%00@host9.example.com>;expires=3600",
                 "<sip:%00@host9.example.com>;expires=3600"]),
])
def test_registers_bind_the_contact_as_the_rfc_reads_it(name, contacts):
    (response,) = answered(name)
    assert response.headers.get_all("Contact") == contacts


def test_an_unsupported_requirement_is_named_in_unsupported():
    (response,) = answered("bext01")
    assert response.headers.get_all("Unsupported") == ["noEndpointKnowsThis",
                                                       "norThisOneEither"]
