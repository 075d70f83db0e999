"""REGISTER to RegisterCommand and bindings to 200 OK (RFC 3261 10.3, RFC 5626, RFC 3327)."""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from domain import Binding, ContactUpdate
from infrastructure.gateway_policy import registrar_policy
from infrastructure.settings import load_settings
from sip_gateway.errors import Forbidden, IntervalTooBrief, MalformedMessage, PeerError
from sip_gateway.server.registrar import RegisterCommand, RegistrarPolicy, read_register, register_ok
from sip_gateway.server.responses import response_for_error, to_tag_for
from sip_gateway.sip import NameAddr, SipRequest, parse_message

REGISTERS = Path(__file__).resolve().parents[1] / "fixtures/kamailio-5.6/messages/registers"
POLICY = RegistrarPolicy(domains=("Example.COM",), min_expires=60, max_expires=3600,
                         default_expires=1800)
NOW = 1_800_000_000.0

BASE = (
    ("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1"),
    ("Max-Forwards", "70"),
    ("From", "<sip:alice@example.com>;tag=f-1"),
    ("To", "<sip:alice@example.com>"),
    ("Call-ID", "reg-1@192.0.2.10"),
    ("CSeq", "7 REGISTER"),
)


def raw_register(*extra: str, **swap: str | None) -> bytes:
    """A REGISTER for alice: BASE with lines swapped (`Call_ID=...`, None drops), then `extra`."""
    swaps = {name.replace("_", "-").lower(): value for name, value in swap.items()}
    lines = ["REGISTER sip:example.com SIP/2.0"]
    for name, value in BASE:
        value = swaps.get(name.lower(), value)
        if value is not None:
            lines.append(f"{name}: {value}")
    lines += [*extra, "Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode()


def read(raw: bytes, policy: RegistrarPolicy = POLICY, *, source=("192.0.2.10", 5060),
         transport="UDP", local=("198.51.100.1", 5060)) -> RegisterCommand:
    return read_register(parse_message(raw), policy, source=source, transport=transport,
                         local=local)


def contacts(*lines: str, **swap: str | None) -> tuple[ContactUpdate, ...]:
    return read(raw_register(*lines, **swap)).request.contacts


# -- real REGISTERs Kamailio 5.6 answered -------------------------------------------------------

def test_a_plain_kamailio_register_maps_to_one_binding():
    command = read((REGISTERS / "0005-sipp5091-to-registrar-REGISTER.sip").read_bytes(),
                   source=("127.0.0.1", 5091), local=("127.0.0.1", 5060))
    assert command.aor == "sip:alice@example.com"
    request = command.request
    assert (request.callid, request.cseq) == ("lab-alice-dev1@127.0.0.1", 1)
    assert request.wildcard is False
    assert request.contacts == (ContactUpdate("sip:alice@127.0.0.1:5091;transport=udp", 3600),)
    assert request.received == "sip:127.0.0.1:5091;transport=udp"
    assert request.socket == "udp:127.0.0.1:5060"
    assert (request.path, request.user_agent) == ((), "sipp-lab-ua")


def test_an_outbound_register_keeps_instance_reg_id_q_and_the_other_parameters():
    command = read((REGISTERS / "0025-sipp5091-to-registrar-REGISTER.sip").read_bytes())
    (update,) = command.request.contacts
    assert update.uri == "sip:alice@127.0.0.1:5093;transport=udp"
    assert (update.expires, update.q, update.reg_id) == (1800, 0.5, 1)
    assert update.instance == '"<urn:uuid:00000000-0000-1000-8000-000000000002>"'
    assert update.params == (("+g.oma.sip-im", None), ("language", '"en,fr"'))
    assert update.key == 'instance|"<urn:uuid:00000000-0000-1000-8000-000000000002>"|1'
    assert command.request.user_agent == "sipp-lab-ua dev2"


def test_a_kamailio_wildcard_register_removes_everything():
    command = read((REGISTERS / "0069-sipp5091-to-registrar-REGISTER.sip").read_bytes())
    assert command.request.wildcard is True
    assert command.request.contacts == ()
    assert (command.request.callid, command.request.cseq) == ("lab-alice-dev1@127.0.0.1", 5)


# -- policy -------------------------------------------------------------------------------------

def test_the_policy_takes_the_registrar_domains_else_the_default_domain_else_any():
    both = load_settings(overrides={"registrar": {"domains": ["a.org", "b.org"], "min_expires": 30},
                                    "reginfo": {"default_domain": "c.org"}})
    assert registrar_policy(both) == RegistrarPolicy(("a.org", "b.org"), 30, 3600, 3600)
    fallback = load_settings(overrides={"reginfo": {"default_domain": "c.org"}})
    assert registrar_policy(fallback).domains == ("c.org",)
    assert registrar_policy(load_settings()).domains == ()


# -- the address-of-record (RFC 3261 10.3 steps 1 and 5) -----------------------------------------

def test_the_aor_is_the_to_uri_canonical_with_the_user_case_kept():
    command = read(raw_register(To='"Alice" <SIP:Alice@EXAMPLE.com:5060;user=phone>;tag=x'))
    assert command.aor == "sip:Alice@example.com"
    assert read(raw_register(To="sips:bob@example.com")).aor == "sips:bob@example.com"


def test_a_domain_we_do_not_serve_is_forbidden_and_named():
    with pytest.raises(Forbidden, match="other.org") as refused:
        read(raw_register(To="<sip:alice@other.org>"))
    assert refused.value.sip_status == 403
    assert read(raw_register(To="<sip:alice@other.org>"), RegistrarPolicy((), 60, 3600, 1800)).aor


def test_a_tel_aor_has_no_domain_and_is_always_allowed():
    command = read(raw_register(To="<tel:+1-555-0100>"))
    assert command.aor == "tel:+15550100"


@pytest.mark.parametrize("to", ["<http://example.com/alice>", "<sip:example.com>", "<sip:alice@>"])
def test_a_bad_to_uri_is_a_400(to):
    with pytest.raises(MalformedMessage):
        read(raw_register(To=to))


def test_a_missing_to_or_call_id_is_a_400():
    request = parse_message(raw_register())
    for name in ("To", "Call-ID"):
        headers = request.headers.copy()
        headers.remove(name)
        with pytest.raises(MalformedMessage, match=name):
            read_register(SipRequest("REGISTER", "sip:example.com", headers=headers), POLICY,
                          source=("192.0.2.10", 5060), transport="udp", local=("::1", 5060))


def test_the_cseq_method_must_be_register():
    request = parse_message(raw_register(CSeq="7 OPTIONS").replace(b"REGISTER sip", b"OPTIONS sip"))
    with pytest.raises(MalformedMessage, match="REGISTER"):
        read_register(request, POLICY, source=("192.0.2.10", 5060), transport="udp",
                      local=("::1", 5060))


# -- Contact (RFC 3261 10.3 steps 6 and 7) --------------------------------------------------------

def test_without_contact_the_register_is_a_query():
    assert read(raw_register()) == RegisterCommand("sip:alice@example.com", None)


def test_a_wildcard_must_be_alone_and_come_with_expires_0():
    assert read(raw_register("Contact: *", "Expires: 0")).request.wildcard
    for lines in (("Contact: *",), ("Contact: *", "Expires: 3600"),
                  ("Contact: *, <sip:alice@192.0.2.10>", "Expires: 0"),
                  ("Contact: *", "Contact: <sip:alice@192.0.2.10>", "Expires: 0")):
        with pytest.raises(MalformedMessage, match=r"\*"):
            read(raw_register(*lines))


def test_expires_comes_from_the_parameter_else_the_header_else_the_default():
    updates = contacts("Contact: <sip:a@192.0.2.10>;expires=120, <sip:b@192.0.2.10>",
                       "Expires: 300")
    assert [c.expires for c in updates] == [120, 300]
    assert contacts("Contact: <sip:a@192.0.2.10>")[0].expires == 1800


def test_expires_0_removes_a_binding_and_long_ones_are_cut_to_max_expires():
    updates = contacts("Contact: <sip:a@192.0.2.10>;expires=0",
                       "Contact: <sip:b@192.0.2.10>;expires=86400")
    assert [c.expires for c in updates] == [0, 3600]


def test_one_too_brief_contact_refuses_the_whole_register_with_423():
    with pytest.raises(IntervalTooBrief) as refused:
        read(raw_register("Contact: <sip:a@192.0.2.10>, <sip:b@192.0.2.10>;expires=59"))
    assert (refused.value.sip_status, refused.value.min_expires) == (423, 60)
    with pytest.raises(IntervalTooBrief):
        read(raw_register("Contact: <sip:a@192.0.2.10>", "Expires: 1"))


@pytest.mark.parametrize("lines", [
    ("Contact: <sip:a@192.0.2.10>;expires=soon",),
    ("Contact: <sip:a@192.0.2.10>;expires",),
    ("Contact: <sip:a@192.0.2.10>", "Expires: Thu, 01 Dec 1994 16:00:00 GMT"),
    ("Contact: <sip:a@192.0.2.10>;expires=60;EXPIRES=70",),
])
def test_expires_that_is_not_a_number_is_a_400(lines):
    with pytest.raises(MalformedMessage):
        read(raw_register(*lines))


def test_q_is_a_qvalue_with_up_to_three_decimals():
    updates = contacts("Contact: <sip:a@h.example>;q=0.125, <sip:b@h.example>;q=1.000,"
                       " <sip:c@h.example>;q=0, <sip:d@h.example>")
    assert [c.q for c in updates] == [0.125, 1.0, 0.0, None]
    for bad in ("1.5", "0.1234", "abc", '"0.5"', "-0"):
        with pytest.raises(MalformedMessage, match="q"):
            read(raw_register(f"Contact: <sip:a@h.example>;q={bad}"))
    with pytest.raises(MalformedMessage, match="q"):
        read(raw_register("Contact: <sip:a@h.example>;q"))


def test_reg_id_is_a_positive_integer_and_the_instance_is_kept_as_written():
    (update,) = contacts('Contact: <sip:a@h.example>;+SIP.Instance="<urn:uuid:AB>";Reg-Id=2')
    assert (update.instance, update.reg_id) == ('"<urn:uuid:AB>"', 2)
    for bad in ("reg-id=x", "reg-id=0", "reg-id=2147483648", "reg-id", "+sip.instance"):
        with pytest.raises(MalformedMessage):
            read(raw_register(f"Contact: <sip:a@h.example>;{bad}"))


def test_methods_become_a_tuple():
    (update,) = contacts('Contact: <sip:a@h.example>;methods="INVITE, MESSAGE,SUBSCRIBE"')
    assert update.methods == ("INVITE", "MESSAGE", "SUBSCRIBE")
    assert contacts("Contact: <sip:a@h.example>;methods=INVITE")[0].methods == ("INVITE",)
    for bad in ('methods="INVITE,,BYE"', 'methods="a b"', "methods"):
        with pytest.raises(MalformedMessage, match="methods"):
            read(raw_register(f"Contact: <sip:a@h.example>;{bad}"))


def test_other_parameters_display_name_and_the_uri_stay_as_written():
    (update,) = contacts('Contact: "Alice, Desk" <SIP:Alice@PC.Example:5070;Transport=TCP;ob>'
                         ';+sip.ice;audio;x-flag="a;b";expires=300')
    assert update.uri == "SIP:Alice@PC.Example:5070;Transport=TCP;ob"
    assert update.display_name == "Alice, Desk"
    assert update.params == (("+sip.ice", None), ("audio", None), ("x-flag", '"a;b"'))
    assert update.expires == 300


def test_an_addr_spec_contact_gives_its_parameters_to_the_header():
    (update,) = contacts("Contact: sip:bob@192.0.2.10:5062;expires=120;foo")
    assert (update.uri, update.expires, update.params) == ("sip:bob@192.0.2.10:5062", 120,
                                                           (("foo", None),))


def test_every_contact_line_and_comma_list_counts_in_order():
    updates = contacts("Contact: <sip:a@h.example>, Bob <sip:b@h.example>",
                       "m: <sip:c@h.example>")
    assert [c.uri for c in updates] == ["sip:a@h.example", "sip:b@h.example", "sip:c@h.example"]
    assert updates[1].display_name == "Bob"


@pytest.mark.parametrize("contact", ["<mailto:alice@example.com>", "<sip:a@[::1>",
                                     "<sip:a@h:99999>", "<sip:a@h.example", "sip:a@h.example x"])
def test_a_contact_uri_that_does_not_parse_is_a_400(contact):
    with pytest.raises(MalformedMessage):
        read(raw_register(f"Contact: {contact}"))


# -- where the REGISTER came from ------------------------------------------------------------------

def test_received_socket_path_and_user_agent():
    request = read(raw_register("Contact: <sip:a@h.example>", "Path: <sip:p1.example;lr>",
                                "Path: <sip:p2.example;lr>, <sip:p3.example;lr>",
                                "User-Agent: phone/1.0 (test)"),
                   source=("2001:db8::10", 5070), transport="TCP",
                   local=("2001:db8::1", 5060)).request
    assert request.received == "sip:[2001:db8::10]:5070;transport=tcp"
    assert request.socket == "tcp:[2001:db8::1]:5060"
    assert request.path == ("<sip:p1.example;lr>", "<sip:p2.example;lr>", "<sip:p3.example;lr>")
    assert request.user_agent == "phone/1.0 (test)"
    assert read(raw_register("Contact: <sip:a@h.example>")).request.user_agent is None


# -- 200 OK (RFC 3261 10.3 step 8) -------------------------------------------------------------

def binding(contact: str, expires: float, **extra) -> Binding:
    return Binding(contact=contact, expires=expires, callid="reg-1@192.0.2.10", cseq=7,
                   registered_at=NOW - 100, **extra)


def test_the_200_ok_lists_every_binding_with_its_remaining_expires():
    request = parse_message(raw_register("Contact: <sip:a@h.example>"))
    response = parse_message(register_ok(request, [
        binding("sip:a@192.0.2.10;transport=udp", NOW + 599.6, q=0.5,
                instance='"<urn:uuid:1>"', reg_id=1),
        binding("sip:b@192.0.2.10", NOW + 60.4, q=1.0),
        binding("sip:c@192.0.2.10", NOW - 5, instance="<urn:uuid:2>"),
    ], NOW, to_tag="t9").serialize())

    assert response.start_line() == "SIP/2.0 200 OK"
    assert response.headers.get_all("Contact") == [
        '<sip:a@192.0.2.10;transport=udp>;expires=600;q=0.5;+sip.instance="<urn:uuid:1>";reg-id=1',
        "<sip:b@192.0.2.10>;expires=60;q=1.0",
        '<sip:c@192.0.2.10>;expires=0;+sip.instance="<urn:uuid:2>"',
    ]
    assert response.headers.get("Date") == "Fri, 15 Jan 2027 08:00:00 GMT"
    assert response.headers.get("To") == "<sip:alice@example.com>;tag=t9"
    assert response.headers.get("Via") == "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1"
    assert (response.headers.get("Call-ID"), response.headers.get("CSeq")) == (
        "reg-1@192.0.2.10", "7 REGISTER")


def test_without_bindings_the_200_ok_has_no_contact():
    response = register_ok(parse_message(raw_register()), [], NOW, to_tag="t")
    assert "Contact" not in response.headers
    assert "Date" in response.headers


def test_path_is_echoed_only_when_the_ua_supports_it():
    path = ("Path: <sip:p1.example;lr>", "Path: <sip:p2.example;lr>")
    supported = parse_message(raw_register(*path, "Supported: outbound, PATH"))
    assert register_ok(supported, [], NOW, to_tag="t").headers.get_all("Path") == [
        "<sip:p1.example;lr>", "<sip:p2.example;lr>"]
    unsupported = parse_message(raw_register(*path, "Supported: outbound"))
    assert "Path" not in register_ok(unsupported, [], NOW, to_tag="t").headers


# -- hostile header values ----------------------------------------------------------------------

FRAGMENTS = ["<", ">", "sip:", "sips:", "tel:+1", "alice", "@", "example.com", "h.example", ":5060",
             "[::1]", ";", "=", ",", '"', "\\", " ", "*", "expires", "q", "0.5", "1", "0", "60",
             "+sip.instance", "reg-id", "methods", "transport=tcp", "lr", "tag", "REGISTER"]
PARAM = st.tuples(
    st.sampled_from(["expires", "q", "+sip.instance", "reg-id", "methods", "ob", "Expires"]),
    st.one_of(st.none(), st.text(max_size=4),
              st.sampled_from(["0", "1", "59", "60", "0.5", "1.0", "86400", "9" * 12,
                               '"<urn:uuid:1>"', '"INVITE,BYE"', "INVITE", '""'])),
).map(lambda p: f";{p[0]}" if p[1] is None else f";{p[0]}={p[1]}")
CONTACT = st.tuples(
    st.sampled_from(["", '"Al, \\"ice\\"" ', "Bob "]),
    st.sampled_from(["sip:a@h.example", "sip:[::1]:5070", "sips:b@192.0.2.1;transport=tcp",
                     "tel:+1555", "SIP:X@Y.example", "sip:a@", "*"]),
    st.lists(PARAM, max_size=4).map("".join),
).map(lambda c: f"{c[0]}<{c[1]}>{c[2]}")
VALUES = st.one_of(st.text(max_size=40),
                   st.lists(st.sampled_from(FRAGMENTS), max_size=14).map("".join),
                   st.lists(CONTACT, min_size=1, max_size=3).map(", ".join),
                   st.sampled_from(["*", "0", "60", "3600", "4294967296", "path"]))
NAMES = st.sampled_from(["Contact", "m", "Expires", "To", "t", "CSeq", "Call-ID", "From",
                         "Path", "Supported", "User-Agent", "Via"])
LINES = st.lists(st.one_of(st.tuples(st.sampled_from(["Contact", "m"]),
                                     st.lists(CONTACT, min_size=1, max_size=3).map(", ".join)),
                           st.tuples(st.just("Expires"), st.sampled_from(["0", "1", "60", "3600"])),
                           st.tuples(NAMES, VALUES)), max_size=5)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(LINES)
@example([("Contact", '<sip:a@h.example>;q=0.5;+sip.instance="<u>";reg-id=1'), ("Path", "<sip:p>"),
          ("Supported", "path")])
@example([("To", "<sip:alice@"), ("Contact", "*")])
def test_any_header_values_map_or_raise_a_peer_error_and_always_get_a_response(lines):
    swaps = {name: value for name, value in lines if name in ("To", "CSeq", "Call-ID", "From")}
    extra = [f"{name}: {value}" for name, value in lines if name not in swaps]
    try:
        request = parse_message(raw_register(*extra, **{k.replace("-", "_"): v
                                                         for k, v in swaps.items()}))
    except PeerError:
        return
    try:
        command = read_register(request, POLICY, source=("192.0.2.10", 5060), transport="udp",
                                local=("::1", 5060))
    except PeerError as error:
        response = response_for_error(request, error, to_tag_for(request))
        assert parse_message(response.serialize()).status == error.sip_status
        return
    updates = command.request.contacts if command.request else ()
    bindings = [binding(u.uri, NOW + u.expires, q=u.q, instance=u.instance, reg_id=u.reg_id)
                for u in updates if u.expires and u.key]
    response = parse_message(register_ok(request, bindings, NOW, to_tag="t").serialize())
    assert len(response.headers.get_all("Contact")) == len(bindings)
    assert all(NameAddr.parse(c).param("expires") for c in response.headers.get_all("Contact"))


@pytest.mark.parametrize("request_uri, outcome", [
    ("sip:example.com", None),
    ("sip:EXAMPLE.com:5060", None),
    ("sip:198.51.100.1", None),  # the registrar addressed by its address
    ("sip:[2001:db8::1]:5070", None),
    ("sip:other.example.net", "Request-URI domain other.example.net is not served"),
    ("tel:+15551230001", "must be a SIP or SIPS URI"),
])
def test_the_request_uri_must_name_a_domain_we_serve(request_uri, outcome):
    raw = raw_register("Contact: <sip:alice@192.0.2.10>").replace(
        b"REGISTER sip:example.com SIP/2.0", f"REGISTER {request_uri} SIP/2.0".encode())
    if outcome is None:
        assert read(raw).aor == "sip:alice@example.com"
        return
    with pytest.raises(PeerError, match=outcome) as error:
        read(raw)
    assert error.value.sip_status == (403 if "not served" in outcome else 400)
