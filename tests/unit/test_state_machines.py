"""The RFC 3680 machines: the derived tables are exactly the RFC's transitions."""

import pytest

from domain import CONTACT_MACHINE, REGISTRATION_MACHINE, IllegalTransition


def test_the_contact_table_has_the_nine_rfc3680_events():
    assert CONTACT_MACHINE.table == {
        ("init", "registered"): "active",
        ("init", "created"): "active",
        ("active", "refreshed"): "active",
        ("active", "shortened"): "active",
        ("active", "expired"): "terminated",
        ("active", "deactivated"): "terminated",
        ("active", "probation"): "terminated",
        ("active", "unregistered"): "terminated",
        ("active", "rejected"): "terminated",
    }


def test_the_registration_table_cycles_init_active_terminated():
    assert REGISTRATION_MACHINE.table == {
        ("init", "activated"): "active",
        ("active", "terminated"): "terminated",
        ("terminated", "reset"): "init",
    }


@pytest.mark.parametrize("state, event", [
    ("init", "refreshed"), ("init", "expired"), ("active", "registered"), ("terminated", "refreshed"),
])
def test_a_transition_outside_the_table_is_illegal(state, event):
    with pytest.raises(IllegalTransition, match=f"{event!r} is not allowed in state {state!r}"):
        CONTACT_MACHINE.next_state(state, event)


def test_the_mermaid_diagram_lists_every_transition():
    diagram = CONTACT_MACHINE.mermaid()
    assert diagram.startswith("stateDiagram-v2\n    [*] --> init")
    assert diagram.count("-->") == len(CONTACT_MACHINE.table) + 1
