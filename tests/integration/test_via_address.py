"""The Via address of our PUBLISH/SUBSCRIBE when serve listens on a wildcard address."""

from sip_gateway.transport.endpoints import reachable_host


def test_a_specific_listener_address_is_used_as_is():
    assert reachable_host("127.0.0.1", ("127.0.0.1", 5080)) == "127.0.0.1"
    assert reachable_host("::1", None) == "::1"


def test_a_wildcard_listener_uses_the_address_routed_toward_the_next_hop():
    assert reachable_host("0.0.0.0", ("127.0.0.1", 5080)) == "127.0.0.1"
    assert reachable_host("::", ("::1", 5080)) == "::1"
    assert reachable_host("0.0.0.0", None) == "127.0.0.1"
