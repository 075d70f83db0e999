"""The registrar mapping of RFC 3261 10.3: a REGISTER becomes a command, bindings a 200 OK.

Theory of operation: `read_register` checks a parsed REGISTER the way RFC 3261 10.3
steps 1-7 do and returns the AoR and the domain's RegisterRequest, or raises a PeerError
with the status to answer. The AoR is the To URI (step 5), canonical but with its user
part's case kept, so that the usrloc policy decides case-sensitivity later; its host must
be one of ours (step 1, 403). A REGISTER without Contact is a query (step 6). `*` must be
alone and come with `Expires: 0`. Each other Contact gets its lifetime from its `expires`
parameter, else the Expires header, else the default (step 7); 0 removes the binding,
a lifetime under min_expires refuses the whole request with 423 and one above
max_expires is cut down to it. Nothing here touches a socket or a clock.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from email.utils import formatdate
from functools import lru_cache

from domain.aor import AorPolicy, normalize_aor
from domain.binding import MAX_REG_ID, Binding, ContactUpdate, RegisterRequest
from domain.errors import InvalidUri
from domain.uri import SipUri, parse_uri
from sip_gateway.errors import Forbidden, IntervalTooBrief, MalformedMessage
from sip_gateway.server.responses import make_response
from sip_gateway.sip import CSeq, NameAddr, SipRequest, SipResponse, parse_delta_seconds
from sip_gateway.sip.grammar import QUOTED_STRING, is_token, quote, show, unquote

# Contact parameters that become ContactUpdate fields; every other one is kept in params.
LIFTED_PARAMS = ("expires", "q", "+sip.instance", "reg-id", "methods")

_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")  # RFC 3261 25.1
_REG_ID = re.compile(r"[0-9]{1,10}")
_DISPLAY = re.compile(f"[ \t]*{QUOTED_STRING}[ \t]*")
_QUOTED = re.compile(QUOTED_STRING)
_CASE_KEPT = AorPolicy(case_sensitive=True)


@dataclass(frozen=True)
class RegistrarPolicy:
    """The domains we register for (empty: any) and the expiry limits (RFC 3261 10.3)."""

    domains: tuple[str, ...]
    min_expires: int
    max_expires: int
    default_expires: int

    def serves(self, host: str) -> bool:
        return not self.domains or _domain(host) in _domains(self.domains)


@dataclass(frozen=True)
class RegisterCommand:
    """What a REGISTER asks of an AoR; `request` is None for a query (RFC 3261 10.3 step 6)."""

    aor: str
    request: RegisterRequest | None


def read_register(request: SipRequest, policy: RegistrarPolicy, *, source: tuple[str, int],
                  transport: str, local: tuple[str, int]) -> RegisterCommand:
    """Map a REGISTER to a RegisterCommand (RFC 3261 10.3 steps 1-7); raises a PeerError.

    tel AoRs have no domain and are always accepted, whatever `policy.domains` says.
    """
    headers = request.headers
    _check_request_uri(request.uri, policy)
    aor, host = _address_of_record(headers.get("To"))
    if host is not None and not policy.serves(host):
        raise Forbidden(f"domain {host} is not served by this registrar")
    callid = headers.get("Call-ID")
    if not callid:
        raise MalformedMessage("REGISTER without a Call-ID")
    cseq = request.cseq
    if cseq.method != "REGISTER" or request.method != "REGISTER":
        raise MalformedMessage(f"CSeq method {cseq.method} and request method "
                               f"{request.method} must both be REGISTER")
    expires_text = headers.get("Expires")
    header_expires = None if expires_text is None else parse_delta_seconds(expires_text)
    contacts = headers.get_all("Contact")
    if not contacts:
        return RegisterCommand(aor, None)

    wildcard = "*" in contacts
    updates: tuple[ContactUpdate, ...] = ()
    if wildcard:
        if len(contacts) > 1:
            raise MalformedMessage("Contact: * must be the only Contact of the REGISTER")
        if header_expires != 0:
            raise MalformedMessage("Contact: * needs Expires: 0")
    else:
        default = policy.default_expires if header_expires is None else header_expires
        updates = tuple(_contact_update(text, default) for text in contacts)
        brief = next((u for u in updates if 0 < u.expires < policy.min_expires), None)
        if brief is not None:
            raise IntervalTooBrief(policy.min_expires, f"expires {brief.expires} of {brief.uri} "
                                                       f"below the minimum {policy.min_expires}")
        updates = tuple(_capped(u, policy.max_expires) for u in updates)
    return RegisterCommand(aor, RegisterRequest(
        callid=callid,
        cseq=cseq.number,
        contacts=updates,
        wildcard=wildcard,
        received=f"sip:{_hostport(*source)};transport={transport.lower()}",
        path=tuple(headers.get_all("Path")),
        user_agent=headers.get("User-Agent") or None,
        socket=f"{transport.lower()}:{_hostport(*local)}",
    ))


def _check_request_uri(text: str, policy: RegistrarPolicy) -> None:
    """RFC 3261 10.3 step 1: the Request-URI names a domain we hold bindings for.

    An IP address literal is accepted: the client addressed this registrar directly.
    """
    try:
        uri = parse_uri(text)
    except InvalidUri as error:
        raise MalformedMessage(f"bad Request-URI: {error}") from None
    if not isinstance(uri, SipUri):
        raise MalformedMessage("a REGISTER Request-URI must be a SIP or SIPS URI")
    if not is_ip_literal(uri.host) and not policy.serves(uri.host):
        raise Forbidden(f"Request-URI domain {uri.host} is not served by this registrar")


def register_ok(request: SipRequest, bindings: Sequence[Binding], now: float, *,
                to_tag: str) -> SipResponse:
    """200 OK listing every current binding with its remaining expires (RFC 3261 10.3 step 8).

    +sip.instance and reg-id are echoed (RFC 5626 6); so is Path when the UA said
    `Supported: path` (RFC 3327 5.3).
    """
    lines = [("Contact", _contact_value(binding, now)) for binding in bindings]
    if "path" in {tag.lower() for tag in request.headers.get_all("Supported")}:
        lines += [("Path", value) for value in request.headers.get_all("Path")]
    lines.append(("Date", _http_date(int(now))))
    return make_response(request, 200, to_tag=to_tag, headers=lines)


# Reading ----------------------------------------------------------------------------------

def _address_of_record(to_text: str | None) -> tuple[str, str | None]:
    """The canonical AoR of the To header and its host (None for a tel URI)."""
    if not to_text:
        raise MalformedMessage("REGISTER without a To header")
    return _read_address_of_record(to_text)


@lru_cache(maxsize=65536)
def _read_address_of_record(to_text: str) -> tuple[str, str | None]:
    """_address_of_record once per To text: a UA registers its AoR with the same To every
    time (refusals are not cached)."""
    to = NameAddr.parse(to_text, "To")
    try:
        identity = normalize_aor(_written_uri(to_text), _CASE_KEPT)
    except InvalidUri as error:
        raise MalformedMessage(f"bad address-of-record in To header: {error}") from None
    return identity.uri, to.uri.host if isinstance(to.uri, SipUri) else None


@lru_cache(maxsize=65536)
def _contact_update(text: str, default_expires: int) -> ContactUpdate:
    """One Contact value read (once per text: a UA refreshes with the same Contact, and
    the update is an immutable value; refusals are not cached)."""
    contact = NameAddr.parse(text, "Contact")
    uri = _written_uri(text)
    try:
        parse_uri(uri)
    except InvalidUri as error:
        raise MalformedMessage(f"bad URI in Contact header: {error}") from None
    lifted: dict[str, str | None] = {}
    rest: list[tuple[str, str | None]] = []
    for name, value in contact.params:
        key = name.lower()
        if key not in LIFTED_PARAMS:
            rest.append((name, value))
        elif key in lifted:
            raise MalformedMessage(f"parameter {key} twice in Contact {show(text)}")
        else:
            lifted[key] = value
    expires = default_expires
    if "expires" in lifted:
        expires = parse_delta_seconds(lifted["expires"] or "", "Contact expires")
    return ContactUpdate(
        uri=uri,
        expires=expires,
        q=_q(lifted["q"]) if "q" in lifted else None,
        instance=_instance(lifted["+sip.instance"]) if "+sip.instance" in lifted else None,
        reg_id=_reg_id(lifted["reg-id"]) if "reg-id" in lifted else None,
        methods=_methods(lifted["methods"]) if "methods" in lifted else (),
        display_name=contact.display_name,
        params=tuple(rest),
    )


def _q(value: str | None) -> float:
    if value is None or _QVALUE.fullmatch(value) is None:
        raise MalformedMessage(f"q in Contact is not a qvalue 0..1: {show(value or '')}")
    return float(value)


def _instance(value: str | None) -> str:
    if not value:
        raise MalformedMessage("+sip.instance in Contact without a value")
    return value


def _reg_id(value: str | None) -> int:
    if value is None or _REG_ID.fullmatch(value) is None or not 0 < int(value) <= MAX_REG_ID:
        raise MalformedMessage(f"reg-id in Contact is not 1..{MAX_REG_ID}: {show(value or '')}")
    return int(value)


def _methods(value: str | None) -> tuple[str, ...]:
    methods = tuple(m.strip(" \t") for m in unquote(value or "").split(","))
    if not all(is_token(m) for m in methods):
        raise MalformedMessage(f"methods in Contact is not a list of methods: {show(value or '')}")
    return methods


def _capped(update: ContactUpdate, max_expires: int) -> ContactUpdate:
    return update if update.expires <= max_expires else replace(update, expires=max_expires)


def _written_uri(text: str) -> str:
    """The URI as the peer wrote it: inside `<...>`, or an addr-spec up to its first `;`.

    Follows NameAddr.parse, which has already accepted `text`.
    """
    rest = text.strip(" \t")
    if rest.startswith('"'):
        display = _DISPLAY.match(rest)
        rest = rest[display.end():] if display else rest
    lt = rest.find("<")
    if lt >= 0 and not any(char in rest[:lt] for char in ':";,>'):
        gt = rest.find(">", lt)
        return rest[lt + 1 : gt].strip(" \t")
    return rest.split(";", 1)[0].strip(" \t")


@lru_cache(maxsize=4096)
def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


@lru_cache(maxsize=64)
def _domains(domains: tuple[str, ...]) -> frozenset[str]:
    return frozenset(_domain(d) for d in domains)


@lru_cache(maxsize=4096)
def _domain(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host


@lru_cache(maxsize=4)
def _http_date(second: int) -> str:
    """The Date header of a response (RFC 3261 20.17), made once per second."""
    return formatdate(second, usegmt=True)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


# Writing ----------------------------------------------------------------------------------

def _contact_value(binding: Binding, now: float) -> str:
    text = f"<{binding.contact}>;expires={binding.remaining(now)}"
    if binding.q is not None:
        text += f";q={_qvalue(binding.q)}"
    if binding.instance:
        text += f";+sip.instance={_param_value(binding.instance)}"
    if binding.reg_id is not None:
        text += f";reg-id={binding.reg_id}"
    return text


def _qvalue(q: float) -> str:
    text = f"{min(max(q, 0.0), 1.0):.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _param_value(value: str) -> str:
    """A gen-value as it stands when it is a token or a quoted string, else quoted."""
    return value if is_token(value) or _QUOTED.fullmatch(value) else quote(value)
