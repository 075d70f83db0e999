"""The properties every target shares: only declared errors, and responses that parse."""

from __future__ import annotations

from domain import PuaReginfoError
from sip_gateway.server.responses import make_response, response_for_error
from sip_gateway.sip import SipRequest, SipResponse, parse_message


def reparsed(response: SipResponse) -> SipResponse:
    """`response` on the wire and read back: a valid SIP response with the same status
    that serializes to the same bytes again."""
    wire = response.serialize()
    again = parse_message(wire)
    assert isinstance(again, SipResponse), wire
    assert (again.status, again.reason) == (response.status, response.reason), wire
    assert again.serialize() == wire, wire
    return again


def refusal(request: SipRequest, error: PuaReginfoError) -> SipResponse:
    """The answer the gateway sends for `error` (its status, the text in a Warning),
    checked to parse again."""
    response = reparsed(response_for_error(request, error))
    assert response.status == error.sip_status, (response.status, error)
    assert response.headers.get("Warning"), response.serialize()
    return response


def answers(request: SipRequest) -> None:
    """A 200 and a 400 to `request` (dialog headers copied, our To tag) parse again."""
    reparsed(make_response(request, 200))
    reparsed(make_response(request, 400, headers=[("Warning", '399 fuzz "refused"')]))
